// Shared helpers for the on-demand benchmarks: they print figures and assert nothing.
import { spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, type TestPostgres } from '../test/harness/index.js';

/** Fills a table with about `megabytes` of random hex text (it compresses to roughly half, like real text). */
export async function seedRandomText(pg: TestPostgres, db: string, megabytes: number): Promise<void> {
  await pg.query('CREATE TABLE random_text (id bigint PRIMARY KEY, body text NOT NULL)', db);
  const rowsPerBatch = 200_000; // 8 md5s = 256 characters, about 290 bytes per row on disk
  const rows = Math.round((megabytes * 1e6) / 290);
  for (let done = 0; done < rows; done += rowsPerBatch) {
    const n = Math.min(rowsPerBatch, rows - done);
    await pg.query(
      `INSERT INTO random_text SELECT g, ${Array.from({ length: 8 }, () => 'md5(random()::text)').join(' || ')}
       FROM generate_series(${done + 1}, ${done + n}) g`,
      db,
    );
  }
  await pg.query('VACUUM ANALYZE random_text', db);
}

export async function databaseBytes(pg: TestPostgres, db: string): Promise<number> {
  const r = await pg.query<{ n: string }>(`SELECT pg_database_size(current_database()) AS n`, db);
  return Number(r[0]!.n);
}

export interface Timed {
  seconds: number;
  peakRssMb: number;
  /** Bytes the program and its children wrote to storage (not pipes or sockets), in MB: /proc/self/io's
   * write_bytes of this process before and after the program was reaped (a reaped child's I/O is added to its
   * parent's). */
  diskWriteMb: number;
  /** The 1-minute load average when it started. */
  load1: number;
  code: number | null;
  stderr: string;
}

/** Runs a program, timing it and sampling its peak RSS (VmHWM) from /proc until it exits. */
export async function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  stdoutTo?: string,
): Promise<Timed> {
  const { openSync, closeSync } = await import('node:fs');
  const fd = stdoutTo ? openSync(stdoutTo, 'w') : 'ignore';
  const load1 = os.loadavg()[0]!;
  const written0 = writeBytes();
  const t0 = performance.now();
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      /* exited */
    }
  };
  const timer = setInterval(sample, 50);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => (sample(), resolve(c))));
  clearInterval(timer);
  if (typeof fd === 'number') closeSync(fd);
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 20));
  const diskWriteMb = (writeBytes() - written0) / 1e6;
  return { seconds, peakRssMb: peak, code, stderr, diskWriteMb, load1 };
}

export function bundle(name: string): string {
  return path.join(repoRoot, 'dist', name, 'index.js');
}

/**
 * A copy of an action's bundle directory under `dir` (the bundle loads its source-map support from beside it), so
 * that a rebuild of dist/ while a benchmark runs does not pull the bundle from under it. Returns the entry file.
 */
export function copyBundle(name: string, dir: string): string {
  const to = path.join(dir, name);
  cpSync(path.dirname(bundle(name)), to, { recursive: true });
  return path.join(to, 'index.js');
}

/** INPUT_* variables as the runner sets them. */
export function actionEnv(inputs: Record<string, string>, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  return env;
}

export const mbps = (bytes: number, seconds: number) => (bytes / 1e6 / seconds).toFixed(1);

function writeBytes(): number {
  const m = /write_bytes:\s+(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : 0;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : 0;
}

/**
 * ~`megabytes` of random text over `tables` tables of mixed sizes (table i weighs 2^(i/5): the largest about 60x
 * the smallest), for the parallel dump and restore benchmarks.
 */
export async function seedMixedTables(pg: TestPostgres, db: string, megabytes: number, tables = 30): Promise<void> {
  const weights = Array.from({ length: tables }, (_, i) => 2 ** (i / 5));
  const total = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < tables; i++) {
    const rows = Math.max(1, Math.round((megabytes * 1e6 * (weights[i]! / total)) / 290));
    await pg.query(
      `CREATE TABLE t${String(i).padStart(2, '0')} (id bigint PRIMARY KEY, body text NOT NULL);
       INSERT INTO t${String(i).padStart(2, '0')} SELECT g, ${Array.from({ length: 8 }, () => 'md5(random()::text)').join(' || ')}
       FROM generate_series(1, ${rows}) g`,
      db,
    );
  }
  await pg.query('VACUUM ANALYZE', db);
}
