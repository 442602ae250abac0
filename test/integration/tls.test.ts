import {
  fixture,
  runBundle,
  startCluster,
  startS3,
  tableCounts,
  TEST_PASSWORD,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { makeTestCa, type TestCa } from '../harness/tls.js';

// A real TLS-only PostgreSQL (Debian 15, `ssl=on`, `hostssl` lines only) with a throwaway CA made by openssl; the
// bundles back up with pg_dump and verify with pg_restore (libpq) while the Node client (snapshot, counts) reads
// the same URL: both halves must agree on every sslmode.
let ca: TestCa;
let otherCa: TestCa;
let server: TestPostgres;
let certServer: TestPostgres;
let s3: TestS3;
let bucket: string;
let sourceDb: string;
let certDb: string;

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

/** A URL to the TLS server with the password, on `host`, with the given query. */
function url(host: string, database: string, query: string, on: TestPostgres = server): string {
  const auth = on === certServer ? 'postgres' : `postgres:${encodeURIComponent(TEST_PASSWORD)}`;
  return `postgres://${auth}@${host}:${on.port}/${encodeURIComponent(database)}${query ? '?' + query : ''}`;
}

beforeAll(async () => {
  ca = makeTestCa();
  otherCa = makeTestCa('another-ca');
  [server, certServer, s3] = await Promise.all([
    startCluster({ tls: { certFile: ca.serverCertFile, keyFile: ca.serverKeyFile, tlsOnly: true } }),
    startCluster({
      tls: {
        certFile: ca.serverCertFile,
        keyFile: ca.serverKeyFile,
        caFile: ca.caFile,
        clientCert: { certFile: ca.clientCertFile, keyFile: ca.clientKeyFile },
      },
    }),
    startS3(),
  ]);
  Object.assign(process.env, s3.env);
  sourceDb = await server.createDatabase('clinic');
  await server.query(fixture('clinic.sql'), sourceDb);
  certDb = await certServer.createDatabase('clinic');
  await certServer.query(fixture('clinic.sql'), certDb);
  bucket = await s3.createBucket('tls');
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), certServer?.stop(), s3?.stop()]);
});

async function backupAndVerify(stream: string, sourceUrl: string, targetUrl: string) {
  const backup = await runBundle('pgdump-to-s3', { ...s3Inputs(), 'database-url': sourceUrl, database: stream });
  expect(backup.errors).toEqual([]);
  expect(backup.exitCode).toBe(0);
  const verify = await runBundle('verify-restore', { ...s3Inputs(), database: stream, 'target-url': targetUrl });
  expect(verify.errors).toEqual([]);
  expect(verify.outputs).toMatchObject({ status: 'passed', 'backup-id': backup.outputs['backup-id'] });
  expect(Number(verify.outputs['rows-checked'])).toBeGreaterThan(0);
  return { backup, verify };
}

test('the server refuses plain connections: only hostssl lines', async () => {
  const { default: pg } = await import('pg');
  const plain = new pg.Client({
    host: '127.0.0.1',
    port: server.port,
    user: 'postgres',
    password: TEST_PASSWORD,
    database: 'postgres',
    ssl: false,
  });
  await expect(plain.connect()).rejects.toThrow(/no pg_hba\.conf entry .*no encryption/);
});

test.each<[string, string, (db: string) => string]>([
  ['no sslmode (libpq default prefer: TLS, not verified)', 'prefer', (db) => url('127.0.0.1', db, '')],
  ['sslmode=prefer', 'prefer-explicit', (db) => url('127.0.0.1', db, 'sslmode=prefer')],
  ['sslmode=require', 'require', (db) => url('127.0.0.1', db, 'sslmode=require')],
  [
    'sslmode=verify-ca + sslrootcert (an IP address: no host name check)',
    'verify-ca',
    (db) => url('127.0.0.1', db, `sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca.caFile)}`),
  ],
  [
    'sslmode=verify-full + sslrootcert (as AWS RDS documents)',
    'verify-full',
    (db) => url('localhost', db, `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.caFile)}`),
  ],
  [
    'sslmode=require + sslrootcert (libpq: checks the chain)',
    'require-ca',
    (db) => url('127.0.0.1', db, `sslmode=require&sslrootcert=${encodeURIComponent(ca.caFile)}`),
  ],
])('backs up and verifies with %s', async (_label, stream, make) => {
  const { verify } = await backupAndVerify(stream, make(sourceDb), make('postgres'));
  const expected = [...(await tableCounts(server, sourceDb)).values()].reduce((a, b) => a + b, 0);
  expect(Number(verify.outputs['rows-checked'])).toBe(expected);
});

test('client certificates (sslcert, sslkey) with hostssl ... cert authentication, no password', async () => {
  const q = `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.caFile)}&sslcert=${encodeURIComponent(ca.clientCertFile)}&sslkey=${encodeURIComponent(ca.clientKeyFile)}`;
  await backupAndVerify(
    'client-cert',
    url('localhost', certDb, q, certServer),
    url('localhost', 'postgres', q, certServer),
  );
  // Without the client certificate the server says no.
  const run = await runBundle('pgdump-to-s3', {
    ...s3Inputs(),
    'database-url': url(
      'localhost',
      certDb,
      `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.caFile)}`,
      certServer,
    ),
    database: 'client-cert-missing',
  });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(/certificate/i);
  expect(run.logs).not.toMatch(/^\s+at /m);
});

test.each<[string, (db: string) => string, RegExp]>([
  [
    'a wrong CA (verify-ca)',
    (db) => url('127.0.0.1', db, `sslmode=verify-ca&sslrootcert=${encodeURIComponent(otherCa.caFile)}`),
    /TLS certificate of 127\.0\.0\.1:\d+ could not be verified .*sslrootcert/,
  ],
  [
    'a wrong CA (require + sslrootcert, checked as libpq does)',
    (db) => url('127.0.0.1', db, `sslmode=require&sslrootcert=${encodeURIComponent(otherCa.caFile)}`),
    /could not be verified/,
  ],
  [
    'a wrong host name (verify-full to 127.0.0.1, certificate for localhost)',
    (db) => url('127.0.0.1', db, `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.caFile)}`),
    /TLS certificate of 127\.0\.0\.1:\d+ is not valid for that host name/,
  ],
  [
    'sslmode=disable on a TLS-only server',
    (db) => url('127.0.0.1', db, 'sslmode=disable'),
    /refused a connection without TLS .*no encryption.*use sslmode=require/,
  ],
  [
    'verify-full without sslrootcert',
    (db) => url('localhost', db, 'sslmode=verify-full'),
    /Input `database-url`: has sslmode=verify-full but no sslrootcert/,
  ],
  [
    'a sslrootcert file that does not exist',
    (db) => url('localhost', db, 'sslmode=verify-full&sslrootcert=/nonexistent/ca.pem'),
    /Input `database-url`: names sslrootcert=\/nonexistent\/ca\.pem, which does not exist/,
  ],
])('%s fails with a clear message and no stack trace, backup and verify alike', async (_label, make, message) => {
  const backup = await runBundle('pgdump-to-s3', {
    ...s3Inputs(),
    'database-url': make(sourceDb),
    database: 'refused',
  });
  expect(backup.exitCode).toBe(1);
  expect(backup.errors.join('\n')).toMatch(message);
  expect(backup.logs).not.toMatch(/^\s+at /m);
  expect(backup.logs).not.toContain(TEST_PASSWORD);
  const verify = await runBundle('verify-restore', {
    ...s3Inputs(),
    database: 'require',
    'target-url': make('postgres'),
  });
  expect(verify.exitCode).toBe(1);
  // The same refusal, naming verify's own input.
  expect(verify.errors.join('\n')).toMatch(new RegExp(message.source.replace('database-url', 'target-url')));
  expect(verify.logs).not.toMatch(/^\s+at /m);
});
