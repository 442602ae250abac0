import type { ChildProcess } from 'node:child_process';
import { UserError } from './errors.js';
import type { Compression } from './manifest.js';
import type { Cancellation } from './cancel.js';
import { ChildWatch, type Processes } from './process.js';
import { openReusedRead, pipeChunks, type OutputChunks } from './reused-read.js';

/** The error for a program the pipeline needs that is not installed. */
export function missingProgram(what: string): UserError {
  return new UserError(
    `A program the backup needs was not found (${what}). For \`compression: zstd\` install zstd (\`apt-get install zstd\`), or set \`compression: gzip\`.`,
  );
}

/**
 * Starts `pg_dump` and, for zstd, `zstd` reading pg_dump's output through an OS pipe: the uncompressed bytes go
 * from one child to the other without passing through Node (zstd is started first, and pg_dump's stdout is
 * zstd's stdin; Node closes its own copy so that zstd sees the end when pg_dump exits). Node reads only what is
 * stored: zstd's output, or pg_dump's for gzip and none, into one reused buffer where it can
 * (src/lib/reused-read.ts). A pg_dump that dies ends zstd's input early, and its non-zero exit is in `watches`:
 * callers must hold back the end of the stream until every watch succeeded.
 */
export async function spawnDumpPipeline(
  pgDumpPath: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  compression: Compression,
  level: number,
  processes: Processes,
  cancel?: Cancellation,
): Promise<{
  watches: ChildWatch[];
  output: OutputChunks;
  /** zstd's own count of what it read and wrote, once it exited; undefined without zstd. */
  summary: () => { read: number; wrote: number } | undefined;
}> {
  const reused = await openReusedRead();
  // The last program's stdout: the reused-buffer socket, else a pipe; Node closes its copy of the socket's end.
  const lastStdout = reused?.childEnd ?? 'pipe';
  const output = (child: ChildProcess) => reused?.chunks ?? pipeChunks(child.stdout!);
  try {
    if (compression !== 'zstd') {
      const dump = processes.spawn(pgDumpPath, args, { env, stdio: ['ignore', lastStdout, 'pipe'] }, cancel);
      return { watches: [new ChildWatch('pg_dump', dump)], output: output(dump), summary: () => undefined };
    }
    // -vv: zstd's last line says how many bytes it read and wrote (zstdSummary).
    const zstd = processes.spawn(
      'zstd',
      ['-vv', '-c', `-${level}`, '-T0'],
      { stdio: ['pipe', lastStdout, 'pipe'] },
      cancel,
    );
    const zw = new ChildWatch('zstd', zstd);
    // A failed spawn (ENOENT) is known synchronously: never start a pg_dump with nobody reading its output.
    if (zstd.pid === undefined) throw missingProgram('spawn zstd ENOENT');
    let dump;
    try {
      dump = processes.spawn(pgDumpPath, args, { env, stdio: ['ignore', zstd.stdin!, 'pipe'] }, cancel);
    } finally {
      zstd.stdin!.destroy();
    }
    const dw = new ChildWatch('pg_dump', dump);
    if (dump.pid === undefined) zstd.kill();
    return { watches: [dw, zw], output: output(zstd), summary: () => zstdSummary(zw.stderrTail()) };
  } catch (e) {
    reused?.chunks.destroy();
    throw e;
  } finally {
    reused?.childEnd.destroy();
  }
}

/**
 * zstd's summary line: `(200000000 B => 6788 B, ...)` (1.5) or `(200000000 => 6788 bytes, ...)` (1.4), the bytes
 * it read (the size of the dump a restore decompresses) and the bytes it wrote (what Node must have received).
 */
export function zstdSummary(stderr: string): { read: number; wrote: number } | undefined {
  const m = /\(\s*(\d+)(?: B)? =>\s*(\d+) (?:B|bytes),/.exec(stderr);
  return m ? { read: Number(m[1]), wrote: Number(m[2]) } : undefined;
}
