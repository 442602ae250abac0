import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** One read's room: more than a pipe holds (64 KiB), so a read takes all the child has written meanwhile. */
export const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Chunks of a child's output. Each chunk may be a view of memory that is reused for the next one: it is valid
 * only until the next chunk is asked for, so a consumer copies what it keeps (PooledUpload does).
 */
export interface OutputChunks extends AsyncIterable<Buffer> {
  /** Stops reading (the child then gets EPIPE) and ends the iteration with `error`. */
  destroy(error?: Error): void;
}

/**
 * A child's stdout that Node reads into one reused buffer. The last program of a dump pipeline writes gigabytes
 * per run; an ordinary pipe gives Node a fresh 64 KiB buffer for every read, and that garbage started a full GC
 * about five times a second (docs/PERFORMANCE.md). Here the child writes into one end of a connected Unix socket
 * and Node reads the other end with `onread` into one buffer, pausing after each read until the consumer asks
 * for the next chunk. The socket's name lives in a new directory only this user can enter (no other user can
 * connect in its place), removed as soon as the two ends are connected; no data touches the disk. Where that
 * cannot be done (Windows, no writable temp directory), this returns undefined and callers read an ordinary pipe
 * (`pipeChunks`).
 */
export async function openReusedRead({ bufferBytes = READ_BUFFER_BYTES, tempDir = os.tmpdir() } = {}): Promise<
  { childEnd: net.Socket; chunks: OutputChunks } | undefined
> {
  if (process.platform === 'win32') return undefined;
  let dir: string;
  try {
    dir = await mkdtemp(path.join(tempDir, 'pba-'));
  } catch {
    return undefined;
  }
  // pauseOnConnect: Node never reads the child's end, it only hands it to the child.
  const server = net.createServer({ pauseOnConnect: true });
  server.maxConnections = 1;
  try {
    const where = path.join(dir, 's');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: where }, resolve);
    });
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const state = new ReadState();
    const buffer = Buffer.allocUnsafeSlow(bufferBytes);
    const reader = net.connect({
      path: where,
      onread: { buffer, callback: (n: number, b: Uint8Array) => state.arrived(Buffer.from(b.buffer, b.byteOffset, n)) },
    });
    state.attach(reader);
    await new Promise<void>((resolve, reject) => {
      reader.once('connect', resolve);
      reader.once('error', reject);
    });
    return { childEnd: await accepted, chunks: state.chunks() };
  } catch {
    return undefined;
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The reader's side: one chunk at most is pending, the socket paused meanwhile. */
class ReadState {
  private view: Buffer | undefined;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private socket!: net.Socket;

  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('end', () => this.settle(() => (this.ended = true)));
    socket.on('error', (e) => this.settle(() => (this.error ??= e)));
    socket.on('close', () =>
      this.settle(() => {
        if (!this.ended) this.error ??= new Error('the read of the output was stopped before its end');
      }),
    );
  }

  /** onread's callback: keep the view and pause (false) until it was consumed. */
  arrived(view: Buffer): false {
    this.settle(() => (this.view = view));
    return false;
  }

  private settle(change: () => void) {
    change();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  chunks(): OutputChunks {
    const iterate = async function* (this: ReadState): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          if (!this.view && !this.ended && !this.error) {
            await new Promise<void>((resolve) => {
              this.wake = resolve;
              this.socket.resume();
            });
          }
          if (this.view) {
            const v = this.view;
            this.view = undefined;
            yield v; // the socket reads again only when the consumer asks for the next chunk
          } else if (this.error) throw this.error;
          else if (this.ended) return;
        }
      } finally {
        this.socket.destroy();
      }
    }.bind(this);
    return { [Symbol.asyncIterator]: iterate, destroy: (e) => this.socket.destroy(e) };
  }
}

/** An ordinary pipe's chunks (each a buffer of its own) behind the same interface. */
export function pipeChunks(stream: Readable): OutputChunks {
  return { [Symbol.asyncIterator]: () => stream[Symbol.asyncIterator](), destroy: (e) => stream.destroy(e) };
}
