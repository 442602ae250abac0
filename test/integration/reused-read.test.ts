// The reused-buffer read of a child's output (src/lib/reused-read.ts) with real children over a real Unix socket,
// and the digesting iterator the backup puts after it (src/lib/digest.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Digest, digested } from '../../src/lib/digest.js';
import { openReusedRead, pipeChunks, READ_BUFFER_BYTES } from '../../src/lib/reused-read.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'reused-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );

async function spawnInto(args: string[]) {
  const reused = await openReusedRead();
  if (!reused) throw new Error('openReusedRead fell back to a pipe: it should not on Linux');
  const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', reused.childEnd, 'inherit'] });
  reused.childEnd.destroy();
  return { child, chunks: reused.chunks, exit: exited(child) };
}

test('a child output arrives whole, in views of one reused buffer, each left as it was while the consumer holds it', async () => {
  const bytes = randomBytes(5 * 1024 * 1024 + 123);
  const file = path.join(dir, 'data');
  writeFileSync(file, bytes);
  const { chunks, exit } = await spawnInto(['cat', file]);
  const hash = createHash('sha256');
  const buffers = new Set<ArrayBufferLike>();
  let total = 0;
  let n = 0;
  for await (const chunk of chunks) {
    buffers.add(chunk.buffer);
    expect(chunk.length).toBeGreaterThan(0);
    expect(chunk.length).toBeLessThanOrEqual(READ_BUFFER_BYTES);
    // The child goes on writing meanwhile: the view must still hold this chunk's bytes afterwards.
    if (n++ % 5 === 0) await sleep(3);
    hash.update(chunk);
    total += chunk.length;
  }
  expect(total).toBe(bytes.length);
  expect(hash.digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
  expect(n).toBeGreaterThan(1);
  expect(buffers.size).toBe(1);
  expect(await exit).toEqual({ code: 0, signal: null });
});

test('destroy ends the iteration with its error, and the child writing gets a broken pipe', async () => {
  const { chunks, exit } = await spawnInto(['cat', '/dev/zero']);
  const seen: number[] = [];
  await expect(
    (async () => {
      for await (const chunk of chunks) {
        seen.push(chunk.length);
        chunks.destroy(new Error('stopped by the test'));
      }
    })(),
  ).rejects.toThrow('stopped by the test');
  expect(seen).toHaveLength(1);
  const { code, signal } = await exit;
  expect(signal === 'SIGPIPE' || (code ?? 0) !== 0).toBe(true);
});

test('a consumer that stops early closes the read: the child does not hang on a full socket', async () => {
  const { chunks, exit } = await spawnInto(['cat', '/dev/zero']);
  for await (const chunk of chunks) {
    expect(chunk.length).toBeGreaterThan(0);
    break;
  }
  const { code, signal } = await exit;
  expect(signal === 'SIGPIPE' || (code ?? 0) !== 0).toBe(true);
});

test('an output that ends before any byte ends the iteration with nothing', async () => {
  const { chunks, exit } = await spawnInto(['true']);
  const got: Buffer[] = [];
  for await (const chunk of chunks) got.push(chunk);
  expect(got).toEqual([]);
  expect((await exit).code).toBe(0);
});

test('the socket name is gone once the ends are connected; without a usable temp directory it falls back to a pipe', async () => {
  const tmp = mkdtempSync(path.join(dir, 'tmp-'));
  const reused = await openReusedRead({ tempDir: tmp });
  expect(reused).toBeDefined();
  expect(readdirSync(tmp)).toEqual([]);
  reused!.childEnd.destroy();
  reused!.chunks.destroy();
  expect(await openReusedRead({ tempDir: path.join(tmp, 'missing') })).toBeUndefined();
});

test('pipeChunks: an ordinary pipe behind the same interface', async () => {
  const child = spawn('head', ['-c', '300000', '/dev/zero'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let total = 0;
  for await (const chunk of pipeChunks(child.stdout!)) total += chunk.length;
  expect(total).toBe(300_000);
});

describe('digested', () => {
  async function* from(parts: string[]) {
    for (const p of parts) yield Buffer.from(p);
  }

  test('digests every chunk before handing it on, waits for beforeEnd, then finishes', async () => {
    const digest = new Digest();
    let ended = false;
    const d = digested(from(['ab', 'cd', '']), digest, async () => {
      await sleep(5);
      ended = true;
    });
    const got: string[] = [];
    for await (const c of d.chunks) got.push(c.toString());
    expect(ended).toBe(true);
    await expect(d.finished).resolves.toBeUndefined();
    expect(got).toEqual(['ab', 'cd', '']);
    expect(digest.bytes).toBe(4);
    expect(digest.sha256()).toBe(createHash('sha256').update('abcd').digest('hex'));
  });

  test('a failing beforeEnd fails both the iteration and finished', async () => {
    const d = digested(from(['x']), new Digest(), () => Promise.reject(new Error('pg_dump exited 1')));
    const consume = async () => {
      for await (const c of d.chunks) expect(c.length).toBe(1);
    };
    await expect(consume()).rejects.toThrow('pg_dump exited 1');
    await expect(d.finished).rejects.toThrow('pg_dump exited 1');
    expect(d.failed()).toBe(true);
  });

  test('a failing source fails finished; a consumer that stops early, or never starts, resolves it', async () => {
    async function* failing() {
      yield Buffer.from('a');
      throw new Error('read failed');
    }
    const failed = digested(failing(), new Digest(), async () => undefined);
    await expect(
      (async () => {
        for await (const _ of failed.chunks) void _;
      })(),
    ).rejects.toThrow('read failed');
    await expect(failed.finished).rejects.toThrow('read failed');

    const early = digested(from(['a', 'b']), new Digest(), () => Promise.reject(new Error('never reached')));
    for await (const _ of early.chunks) break;
    await expect(early.finished).resolves.toBeUndefined();
    expect(early.failed()).toBe(false);

    const never = digested(from(['a']), new Digest(), async () => undefined);
    never.stop();
    await expect(never.finished).resolves.toBeUndefined();
  });
});
