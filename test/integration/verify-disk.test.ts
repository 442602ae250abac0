// Verification within the disk it has: the stored copy is never kept beside the decompressed one, the free space
// is checked up front against the manifest's sizes, and older manifests still verify.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, readdirSync, watch } from 'node:fs';
import path from 'node:path';
import {
  exec,
  fixture,
  getObjectBytes,
  listKeys,
  openMultipartUploads,
  runBundle,
  startPostgres,
  startS3,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

let pg: TestPostgres;
let s3: TestS3;
let source: string;
let bucket: string;
const work = tempDir();

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

async function backup(database: string): Promise<{ id: string; prefix: string }> {
  const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(source), ...s3Inputs(), database });
  if (run.exitCode !== 0) throw new Error(run.logs);
  const id = run.outputs['backup-id']!;
  return { id, prefix: `postgres-backups/${database}/${id}/` };
}

async function readManifest(prefix: string) {
  return JSON.parse((await getObjectBytes(s3.client, bucket, prefix + 'manifest.json')).toString());
}

async function writeManifest(prefix: string, manifest: unknown) {
  await s3.client.send(
    new PutObjectCommand({ Bucket: bucket, Key: prefix + 'manifest.json', Body: JSON.stringify(manifest) }),
  );
}

function verify(database: string, runnerTemp: string) {
  return runBundle(
    'verify-restore',
    { ...s3Inputs(), database, 'target-url': pg.url('postgres'), jobs: '2' },
    { RUNNER_TEMP: runnerTemp },
  );
}

async function scratchDatabases(): Promise<string[]> {
  return (await pg.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'")).map(
    (r) => r.datname,
  );
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  source = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), source);
  bucket = await s3.createBucket('disk');
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

test('the manifest records the decompressed size; verifying writes only the decompressed dump, never the stored copy', async () => {
  const { prefix } = await backup('sized');
  const manifest = await readManifest(prefix);
  const dump = manifest.artifacts.find((a: { name: string }) => a.name === 'dump');
  const stored = await getObjectBytes(s3.client, bucket, dump.key);
  const plain = await exec('zstd', ['-d', '-c'], stored);
  expect(dump.uncompressedBytes).toBe(plain.length);

  const runnerTemp = path.join(work, 'sized');
  mkdirSync(runnerTemp);
  const created = new Set<string>();
  const watcher = watch(runnerTemp, { recursive: true }, (_event, name) => {
    if (name) created.add(path.basename(name.toString()));
  });
  try {
    const run = await verify('sized', runnerTemp);
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
  } finally {
    watcher.close();
  }
  // The work directory held the decompressed dump (and the small globals script), nothing with the stored bytes.
  const files = [...created].filter((n) => !n.startsWith('pba-verify-'));
  expect(files).toContain('dump.pgdump');
  expect(files.filter((n) => !['dump.pgdump', 'globals.sql'].includes(n))).toEqual([]);
  expect(readdirSync(runnerTemp)).toEqual([]);
});

test('a disk too small for the decompressed dump is refused before any download, saying where to make room', async () => {
  const { prefix } = await backup('huge');
  const manifest = await readManifest(prefix);
  manifest.artifacts.find((a: { name: string }) => a.name === 'dump').uncompressedBytes = 4e15;
  await writeManifest(prefix, manifest);
  const runnerTemp = path.join(work, 'huge');
  mkdirSync(runnerTemp);
  const run = await verify('huge', runnerTemp);
  expect(run.exitCode).toBe(1);
  const error = run.errors.join('\n');
  expect(error).toMatch(
    /Not enough free disk for this verification: it keeps the decompressed dump in .*, [\d.]+ TiB, and only/,
  );
  expect(error).toContain('Nothing was downloaded');
  expect(error).toContain(
    'Back up with `jobs: 2` or more (pgdump-to-s3) so that verify-restore streams the data into pg_restore without a local copy',
  );
  expect(error).toContain('point RUNNER_TEMP (the CLI: TMPDIR) at a larger disk');
  expect(run.logs).not.toMatch(/Downloaded and checked/);
  expect(readdirSync(runnerTemp)).toEqual([]);
  expect(await scratchDatabases()).toEqual([]);
});

test('a backup whose manifest predates uncompressedBytes still verifies', async () => {
  const { prefix } = await backup('older');
  const manifest = await readManifest(prefix);
  for (const a of manifest.artifacts) delete a.uncompressedBytes;
  await writeManifest(prefix, manifest);
  const runnerTemp = path.join(work, 'older');
  mkdirSync(runnerTemp);
  const run = await verify('older', runnerTemp);
  expect(run.errors).toEqual([]);
  expect(run.outputs.status).toBe('passed');
  expect(readdirSync(runnerTemp)).toEqual([]);
});

test('a dump whose second half is garbage fails on its checksum (not on zstd), and leaves no file and no scratch database', async () => {
  const { prefix } = await backup('garbage');
  const key = (await listKeys(s3.client, bucket, prefix + 'dump'))[0]!;
  const bytes = await getObjectBytes(s3.client, bucket, key);
  randomFillSync(bytes, bytes.length >> 1);
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  const runnerTemp = path.join(work, 'garbage');
  mkdirSync(runnerTemp);
  const run = await verify('garbage', runnerTemp);
  expect(run.exitCode).toBe(1);
  expect(run.outputs.status).toBe('failed');
  expect(run.errors.join('\n')).toMatch(/Checksum mismatch for .*nothing was restored/);
  expect(readdirSync(runnerTemp)).toEqual([]);
  expect(await scratchDatabases()).toEqual([]);
});

test('without zstd installed the backup says so before pg_dump starts, and leaves nothing', async () => {
  const run = await runBundle(
    'pgdump-to-s3',
    { 'database-url': pg.url(source), ...s3Inputs(), database: 'nozstd' },
    { PATH: '/nonexistent' },
  );
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toContain('install zstd');
  expect(await listKeys(s3.client, bucket, 'postgres-backups/nozstd/')).toEqual([]);
  expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
});
