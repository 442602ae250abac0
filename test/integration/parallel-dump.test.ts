// Parallel streamed dumps (`jobs` > 1) through the bundles: pre-data, data-1..N, post-data in one snapshot, exact
// counts, verification that streams the data into concurrent pg_restore, and failures that leave nothing behind.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomFillSync } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  tableCounts,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

interface ManifestLike {
  artifacts: { name: string; key: string; bytes: number; sha256: string; section?: string }[];
  tables: { schema: string; name: string; rows: number }[];
  largeObjects: number;
  totalRows: number;
}

let pg: TestPostgres;
let s3: TestS3;
let rich: string;
let bucket: string;
const work = tempDir('parallel-');

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

function backup(database: string, url: string, extra: Record<string, string> = {}) {
  return runBundle('pgdump-to-s3', { 'database-url': url, ...s3Inputs(), database, ...extra }, s3.env);
}

async function manifestOf(key: string): Promise<ManifestLike> {
  return JSON.parse((await getObjectBytes(s3.client, bucket, key)).toString()) as ManifestLike;
}

function verify(database: string, extra: Record<string, string> = {}, runnerTemp?: string) {
  return runBundle(
    'verify-restore',
    { ...s3Inputs(), database, 'target-url': pg.url('postgres'), jobs: '2', ...extra },
    { ...s3.env, ...(runnerTemp ? { RUNNER_TEMP: runnerTemp } : {}) },
  );
}

async function ourDatabases(): Promise<string[]> {
  return (
    await pg.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%' OR datname LIKE '%__restor%'",
    )
  ).map((r) => r.datname);
}

const countsOf = (m: ManifestLike) => new Map(m.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  rich = await pg.createDatabase('rich');
  await pg.query(fixture('rich.sql'), rich);
  bucket = await s3.createBucket('parallel');
});

afterAll(async () => Promise.all([pg?.stop(), s3?.stop()]));

describe('a jobs: 3 backup of a database with schemas, mixed-case names, partitions and a large object', () => {
  let manifestKey: string;
  let manifest: ManifestLike;

  beforeAll(async () => {
    const run = await backup('rich', pg.url(rich), { jobs: '3' });
    expect(run.errors).toEqual([]);
    manifestKey = run.outputs['manifest-key']!;
    manifest = await manifestOf(manifestKey);
  });

  test('stores pre-data, data-1..3 and post-data, each with its stored size and SHA-256, and exact counts', async () => {
    expect(manifest.artifacts.map((a) => [a.name, a.section])).toEqual([
      ['pre-data', 'pre-data'],
      ['data-1', 'data'],
      ['data-2', 'data'],
      ['data-3', 'data'],
      ['post-data', 'post-data'],
      ['globals', undefined],
    ]);
    for (const a of manifest.artifacts) {
      const bytes = await getObjectBytes(s3.client, bucket, a.key);
      expect(bytes.length).toBe(a.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(a.sha256);
    }
    const prefix = manifestKey.replace(/manifest\.json$/, '');
    expect(manifest.artifacts[1]!.key).toBe(`${prefix}data-1.pgdump.zst`);
    expect(countsOf(manifest)).toEqual(await tableCounts(pg, rich));
    expect(manifest.largeObjects).toBe(1);
    expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
  });

  test('verifies: data streamed into concurrent pg_restore, counts match, no file and no scratch database left', async () => {
    const runnerTemp = path.join(work, 'verify-rich');
    mkdirSync(runnerTemp);
    const run = await verify('rich', {}, runnerTemp);
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(run.logs).toMatch(/its 3 data artifact\(s\) stream into pg_restore/);
    expect(Number(run.outputs['rows-checked'])).toBe(manifest.totalRows);
    expect(readdirSync(runnerTemp)).toEqual([]);
    expect(await ourDatabases()).toEqual([]);
  });

  test('restores (new-database) with its large object, sequence values, constraints and indexes', async () => {
    const run = await verify('rich', {
      mode: 'restore',
      'target-url': pg.url(rich),
      'restore-strategy': 'new-database',
      'new-database': 'rich_parallel_copy',
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(await tableCounts(pg, 'rich_parallel_copy')).toEqual(await tableCounts(pg, rich));
    const lo = (db: string) =>
      pg.query<{ b: string }>("SELECT encode(lo_get(oid), 'hex') AS b FROM pg_largeobject_metadata", db);
    expect(await lo('rich_parallel_copy')).toEqual(await lo(rich));
    const seq = (db: string) => pg.query<{ v: string }>('SELECT last_value AS v FROM invoice_no', db);
    expect(await seq('rich_parallel_copy')).toEqual(await seq(rich));
    const defs = (db: string) =>
      pg.query<{ d: string }>(
        "SELECT indexdef AS d FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1",
        db,
      );
    expect(await defs('rich_parallel_copy')).toEqual(await defs(rich));
    await pg.query('DROP DATABASE rich_parallel_copy');
  });

  test('a tables restore of a multi-artifact backup is refused before any work, naming the input', async () => {
    const run = await verify('rich', {
      mode: 'restore',
      'target-url': pg.url(rich),
      'restore-strategy': 'new-database',
      tables: 'public.patients',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Input `tables`: Backup .* is a multi-artifact backup/);
    expect(run.logs).not.toMatch(/Downloaded/);
    expect(await ourDatabases()).toEqual([]);
  });
});

test('a checksum failure in one data artifact fails the verification and leaves no scratch database or file', async () => {
  const run = await backup('corrupt', pg.url(rich), { jobs: '2' });
  expect(run.errors).toEqual([]);
  const manifest = await manifestOf(run.outputs['manifest-key']!);
  const data2 = manifest.artifacts.find((a) => a.name === 'data-2')!;
  const bytes = await getObjectBytes(s3.client, bucket, data2.key);
  randomFillSync(bytes, bytes.length >> 1);
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: data2.key, Body: bytes }));
  const runnerTemp = path.join(work, 'verify-corrupt');
  mkdirSync(runnerTemp);
  const v = await verify('corrupt', {}, runnerTemp);
  expect(v.exitCode).toBe(1);
  expect(v.outputs.status).toBe('failed');
  expect(v.errors.join('\n')).toMatch(
    /Checksum mismatch for .*data-2\.pgdump\.zst.*what was restored from it was dropped/,
  );
  expect(readdirSync(runnerTemp)).toEqual([]);
  expect(await ourDatabases()).toEqual([]);
});

test('a pg_dump of one data stream dying fails the whole backup: no manifest, no object, no open upload', async () => {
  const wrapper = path.join(work, 'dying-stream');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `echo "$@" >> "${wrapper}.argv"`,
      'if [ "$1" = "--version" ]; then exec pg_dump --version; fi',
      'case "$*" in *--section=data*patients*) head -c 6000000 /dev/urandom; kill -9 $$;; esac',
      'exec pg_dump "$@"',
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  const run = await backup('dying', pg.url(rich), { jobs: '3', 'pg-dump-path': wrapper, 'part-size-mb': '5' });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(/pg_dump was killed by SIGKILL/);
  expect(await listKeys(s3.client, bucket, 'postgres-backups/dying/')).toEqual([]);
  expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
  const argv = readFileSync(`${wrapper}.argv`, 'utf8');
  // One snapshot for every stream; the password never in argv.
  const snapshots = new Set([...argv.matchAll(/--snapshot=(\S+)/g)].map((m) => m[1]));
  expect(snapshots.size).toBe(1);
  expect(argv).toContain('--section=pre-data');
  expect(argv).not.toContain(encodeURIComponent(pg.password));
});

test('jobs larger than the number of tables: one data stream per table, and it verifies', async () => {
  const db = await pg.createDatabase('two');
  await pg.query(
    'CREATE TABLE a (id serial PRIMARY KEY, v text); CREATE TABLE "B.c" (id int); INSERT INTO a (v) SELECT g::text FROM generate_series(1, 500) g; INSERT INTO "B.c" SELECT generate_series(1, 7);',
    db,
  );
  const run = await backup('two', pg.url(db), { jobs: '8' });
  expect(run.errors).toEqual([]);
  const manifest = await manifestOf(run.outputs['manifest-key']!);
  expect(manifest.artifacts.map((a) => a.name)).toEqual(['pre-data', 'data-1', 'data-2', 'post-data', 'globals']);
  expect(countsOf(manifest)).toEqual(
    new Map([
      ['public.B.c', 7],
      ['public.a', 500],
    ]),
  );
  const v = await verify('two');
  expect(v.errors).toEqual([]);
  expect(v.outputs.status).toBe('passed');
  expect(v.outputs['rows-checked']).toBe('507');
});

test('a database without any table (jobs: 4): pre-data and post-data only, and it verifies', async () => {
  const db = await pg.createDatabase('empty');
  await pg.query('CREATE VIEW answer AS SELECT 42 AS n', db);
  const run = await backup('empty', pg.url(db), { jobs: '4' });
  expect(run.errors).toEqual([]);
  const manifest = await manifestOf(run.outputs['manifest-key']!);
  expect(manifest.artifacts.map((a) => a.name)).toEqual(['pre-data', 'post-data', 'globals']);
  const v = await verify('empty');
  expect(v.errors).toEqual([]);
  expect(v.outputs.status).toBe('passed');
});

test('a bad jobs value is refused before any work, naming the input', async () => {
  const run = await backup('badjobs', pg.url(rich), { jobs: 'many' });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(/`jobs`.*"many".*jobs: auto/);
  expect(await listKeys(s3.client, bucket, 'postgres-backups/badjobs/')).toEqual([]);
});

test('an age-encrypted jobs: 2 backup verifies, and restores by swap into the target with its counts', async () => {
  const keyFile = path.join(work, 'age.key');
  await exec('age-keygen', ['-o', keyFile]);
  const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
  const identity = readFileSync(keyFile, 'utf8');
  const run = await backup('encrypted', pg.url(rich), { jobs: '2', 'age-recipients': recipient });
  expect(run.errors).toEqual([]);
  const manifest = await manifestOf(run.outputs['manifest-key']!);
  expect(manifest.artifacts.filter((a) => a.key.endsWith('.pgdump.zst.age')).map((a) => a.name)).toEqual([
    'pre-data',
    'data-1',
    'data-2',
    'post-data',
  ]);
  const v = await verify('encrypted', { 'age-identity': identity });
  expect(v.errors).toEqual([]);
  expect(v.outputs.status).toBe('passed');
  const target = await pg.createDatabase('swapped');
  const r = await verify('encrypted', {
    'age-identity': identity,
    mode: 'restore',
    'target-url': pg.url(target),
    confirm: target,
    'restore-strategy': 'swap',
  });
  expect(r.errors).toEqual([]);
  expect(r.outputs.status).toBe('passed');
  expect(await tableCounts(pg, target)).toEqual(countsOf(manifest));
  expect(await ourDatabases()).toEqual([]);
});
