import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** postgres:// URL of a database on this server (default: postgres). */
  url(database?: string, password?: string): string;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, database?: string): Promise<T[]>;
  /** Creates a database with a unique name and returns the name. */
  createDatabase(prefix?: string): Promise<string>;
  stop(): Promise<void>;
  /** Stops the server immediately (for fault injection); `start` brings it back. */
  kill(): void;
  start(): void;
}

export const TEST_PASSWORD = 'Pw-t3st s3cr#t/%';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The directory of the installed server binaries (initdb, pg_ctl), newest major first. */
export function findServerBin(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    /* not installed */
  }
  if (existsSync('/usr/lib/postgresql')) {
    for (const v of readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))) {
      candidates.push(`/usr/lib/postgresql/${v}/bin`);
    }
  }
  for (const d of (process.env.PATH ?? '').split(':')) candidates.push(d);
  const found = candidates.find((d) => d && existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl')));
  if (!found)
    throw new Error('No PostgreSQL server binaries (initdb, pg_ctl) found: apt-get install postgresql, or set PG_BIN.');
  return found;
}

function asServerUser(cmd: string, args: string[]): [string, string[]] {
  // The server refuses to run as root; the Debian package provides the postgres user.
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function runChecked(cmd: string, args: string[]): void {
  const [c, a] = asServerUser(cmd, args);
  const r = spawnSync(c, a, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

let counter = 0;

/**
 * A throwaway cluster in a temp dir on 127.0.0.1 with password (scram) authentication, or the server named by
 * TEST_DATABASE_URL (then each test still gets its own databases).
 */
export async function startPostgres(): Promise<TestPostgres> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    const u = new URL(external);
    return makeHandle(
      u.hostname,
      Number(u.port || 5432),
      decodeURIComponent(u.username),
      decodeURIComponent(u.password),
      () => undefined,
      () => undefined,
      async () => undefined,
    );
  }
  const bin = findServerBin();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgtest-'));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  mkdirSync(sock);
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, TEST_PASSWORD + '\n');
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o755);
    for (const p of [dir, sock, pwfile]) {
      chownSync(
        p,
        Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
        Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
      );
    }
  }
  runChecked(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'scram-sha-256',
    `--pwfile=${pwfile}`,
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const port = await freePort();
  const opts = `-p ${port} -k ${sock} -h 127.0.0.1 -F -c max_connections=60 -c max_locks_per_transaction=256`;
  const start = () =>
    runChecked(path.join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', path.join(dir, 'log'), '-o', opts, 'start']);
  const kill = () => {
    try {
      runChecked(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      /* already stopped */
    }
  };
  start();
  const stop = async () => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return makeHandle('127.0.0.1', port, 'postgres', TEST_PASSWORD, kill, start, stop);
}

function makeHandle(
  host: string,
  port: number,
  user: string,
  password: string,
  kill: () => void,
  start: () => void,
  stop: () => Promise<void>,
): TestPostgres {
  const url = (database = 'postgres', pw = password) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@${host}:${port}/${encodeURIComponent(database)}`;
  const query = async <T extends pg.QueryResultRow>(sql: string, database = 'postgres'): Promise<T[]> => {
    const c = new pg.Client({ host, port, user, password, database });
    await c.connect();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  };
  return {
    host,
    port,
    user,
    password,
    url,
    query,
    async createDatabase(prefix = 'db') {
      const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
      await query(`CREATE DATABASE "${name}" TEMPLATE template0`);
      return name;
    },
    stop,
    kill,
    start,
  };
}
