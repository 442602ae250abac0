import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import {
  exec,
  getObjectBytes,
  listKeys,
  runBundle,
  startPostgres,
  startS3,
  tempDir,
  type ActionRun,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { manifestIds, manifestViolations, seedBackups } from '../harness/invariants.js';

/**
 * "Nothing lost": the four faults of issue 12 and a soak, through the bundles, with a fault-injecting proxy
 * between the actions and the S3 server. Assertions read the bucket straight from the server.
 */

let pg: TestPostgres;
let s3: TestS3;
let proxy: FaultProxy;
let small: string;
let large: string;
const work = tempDir();

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  proxy = await startFaultProxy(s3.endpoint);
  small = await pg.createDatabase('small');
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, label text);
     INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;`,
    small,
  );
  // Large enough for a multipart upload with 5 MiB parts (no compression): two parts and a Complete.
  large = await pg.createDatabase('large');
  await pg.query(
    `CREATE TABLE blobs (id int PRIMARY KEY, data text);
     INSERT INTO blobs SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 110000) g;`,
    large,
  );
  Object.assign(process.env, s3.env);
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([pg?.stop(), s3?.stop()]);
});

beforeEach(() => proxy.setRules([]));

function s3Inputs(bucket: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    's3-bucket': bucket,
    's3-endpoint': proxy.endpoint,
    's3-force-path-style': 'true',
    database: 'app',
    ...extra,
  };
}

const backup = (bucket: string, database: string, extra: Record<string, string> = {}) =>
  runBundle('pgdump-to-s3', { 'database-url': pg.url(database), ...s3Inputs(bucket, extra) });

/** A fault is reported, not a bug: one clear message, no stack trace. */
function expectCleanFailure(run: ActionRun) {
  expect(run.exitCode).not.toBe(0);
  expect(run.errors).toHaveLength(1);
  expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
}

const dumpKeys = (keys: string[]) => keys.filter((k) => /\/dump\.pgdump/.test(k));
const manifests = (keys: string[]) => keys.filter((k) => k.endsWith('/manifest.json'));

describe('a lost reply to the manifest write', () => {
  test('applied but unanswered, retries failing: the manifest is read back and the backup succeeds', async () => {
    const bucket = await s3.createBucket('lost-manifest');
    proxy.setRules([
      { fault: 'reset-after', op: 'PutObject', key: /manifest\.json$/, times: 1, name: 'lost-reply' },
      { fault: 'internal', op: 'PutObject', key: /manifest\.json$/, name: 'retries-fail' },
    ]);
    const run = await backup(bucket, small);
    expect(proxy.injected.filter((i) => i.rule === 'lost-reply')).toHaveLength(1);
    expect(proxy.injected.filter((i) => i.rule === 'retries-fail').length).toBeGreaterThanOrEqual(1);
    expect(run.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.logs).toContain('The reply to the manifest write was lost');
    expect(run.summary).toContain('manifest read back after its reply was lost');
    const keys = await listKeys(s3.client, bucket);
    expect(manifests(keys)).toEqual([run.outputs['manifest-key']]);
    expect(dumpKeys(keys)).toEqual([run.outputs['dump-key']]);
    expect(await manifestViolations(s3.client, bucket)).toEqual([]);
  }, 300_000);

  test('never applied: the dump is deleted and the failure says the store failed and re-running is safe', async () => {
    const bucket = await s3.createBucket('no-manifest');
    proxy.setRules([{ fault: 'reset-before', op: 'PutObject', key: /manifest\.json$/ }]);
    const run = await backup(bucket, small);
    expectCleanFailure(run);
    expect(run.errors[0]).toMatch(/object store .* could not be reached .*after 6 attempt\(s\).*re-running is safe/s);
    expect(await listKeys(s3.client, bucket)).toEqual([]);
  }, 300_000);

  test('unknown (the read-back fails too): the dump is kept, so no manifest can outlive it', async () => {
    const bucket = await s3.createBucket('unknown-manifest');
    proxy.setRules([
      { fault: 'reset-after', op: 'PutObject', key: /manifest\.json$/, times: 1 },
      { fault: 'slowdown', op: ['PutObject', 'GetObject', 'HeadObject'], key: /manifest\.json$/ },
    ]);
    const run = await backup(bucket, small);
    expectCleanFailure(run);
    expect(run.errors[0]).toMatch(/whether the backup completed is unknown\. Its dump was kept/);
    const keys = await listKeys(s3.client, bucket);
    expect(manifests(keys)).toHaveLength(1);
    expect(dumpKeys(keys)).toHaveLength(1);
    expect(await manifestViolations(s3.client, bucket)).toEqual([]);
  }, 300_000);
});

describe('a lost reply to CompleteMultipartUpload', () => {
  test('the object is looked at: stored with the bytes sent, the backup succeeds and records how', async () => {
    const bucket = await s3.createBucket('lost-complete');
    proxy.setRules([{ fault: 'reset-after', op: 'CompleteMultipartUpload', times: 1, name: 'lost-complete' }]);
    const before = proxy.injected.length;
    const run = await backup(bucket, large, { compression: 'none', 'part-size-mb': '5' });
    expect(proxy.injected.slice(before).map((i) => i.rule)).toEqual(['lost-complete']);
    expect(proxy.requests.get('UploadPart')).toBeGreaterThanOrEqual(2);
    expect(run.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.logs).toMatch(/The reply completing the upload of .* was lost, but the object is stored/);
    const manifest = JSON.parse((await getObjectBytes(s3.client, bucket, run.outputs['manifest-key']!)).toString()) as {
      artifacts: { bytes: number; confirmedBy: string }[];
    };
    expect(manifest.artifacts[0]!.confirmedBy).toBe('head');
    expect(manifest.artifacts[0]!.bytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(run.summary).toContain('dump confirmed by HEAD after its reply was lost');
    expect(await manifestViolations(s3.client, bucket)).toEqual([]);
    // The manifest is honest: the dump restores (listed by pg_restore) and has every row.
    const dump = await getObjectBytes(s3.client, bucket, run.outputs['dump-key']!);
    const file = path.join(work, 'lost-complete.pgdump');
    await exec('sh', ['-c', `cat > ${file}`], dump);
    expect((await exec('pg_restore', ['--list', file])).toString()).toContain('TABLE DATA public blobs');
  }, 300_000);

  test('a Complete that never succeeds fails cleanly: no manifest, no object, no open upload', async () => {
    const bucket = await s3.createBucket('failed-complete');
    proxy.setRules([{ fault: 'internal', op: 'CompleteMultipartUpload' }]);
    const run = await backup(bucket, large, { compression: 'none', 'part-size-mb': '5' });
    expectCleanFailure(run);
    expect(run.errors[0]).toMatch(/is unavailable \(500 InternalError\).*after 6 attempt\(s\).*re-running is safe/s);
    expect(await listKeys(s3.client, bucket)).toEqual([]);
  }, 300_000);
});

describe('persistent 503 SlowDown', () => {
  test('a backup reports the store unavailable, with the attempts made, not a bug', async () => {
    const bucket = await s3.createBucket('slowdown');
    proxy.setRules([{ fault: 'slowdown' }]);
    const run = await backup(bucket, small);
    expectCleanFailure(run);
    expect(run.errors[0]).toMatch(/object store .* is unavailable \(503 SlowDown\)/);
    expect(run.errors[0]).toMatch(/after 6 attempt\(s\)/);
    expect(run.errors[0]).toMatch(/re-running is safe/);
    expect(run.errors[0]).not.toMatch(/permission|credentials/i);
    proxy.setRules([]);
    expect(await listKeys(s3.client, bucket)).toEqual([]);
  }, 300_000);
});

const prune = (bucket: string, extra: Record<string, string> = {}) =>
  runBundle('prune-retention', { ...s3Inputs(bucket), 'keep-last': '3', ...extra });

describe('prune under delete faults', () => {
  test('over 1,000 keys with later delete batches failing: every remaining manifest has its dump', async () => {
    const bucket = await s3.createBucket('prune-batches');
    const ids = await seedBackups(s3.client, bucket, 350, 100);
    const dbPrefix = 'postgres-backups/app/';
    expect((await listKeys(s3.client, bucket)).length).toBe(1050);

    // Every delete request fails: nothing is deleted, and the error says the store failed, not permissions.
    proxy.setRules([{ fault: 'internal', op: 'DeleteObjects' }]);
    let run = await prune(bucket);
    expectCleanFailure(run);
    expect(run.errors[0]).toMatch(/store failed or throttled after every retry; this is not a permission problem/);
    expect(run.errors[0]).not.toMatch(/s3:DeleteObject/);
    expect(await manifestIds(s3.client, bucket, dbPrefix)).toEqual(ids);

    // The manifests' request succeeds, the second delete request (the first batch of the rest) fails for good.
    proxy.setRules([{ fault: 'slowdown', op: 'DeleteObjects', after: 1, name: 'second-batch' }]);
    run = await prune(bucket);
    expectCleanFailure(run);
    expect(proxy.injected.filter((i) => i.rule === 'second-batch').length).toBeGreaterThanOrEqual(1);
    expect(await manifestViolations(s3.client, bucket)).toEqual([]);
    const kept = [...ids.slice(-3), ids[100]!].sort();
    expect(await manifestIds(s3.client, bucket, dbPrefix)).toEqual(kept);
    // What is left of the deleted backups is incomplete (no manifest), never a manifest without its dump.
    expect(dumpKeys(await listKeys(s3.client, bucket)).length).toBeGreaterThan(kept.length);

    // Without faults, the next run finishes the job (the leftovers are broken/incomplete and removed).
    proxy.setRules([]);
    run = await prune(bucket, { 'incomplete-grace': '0s' });
    expect(run.errors).toEqual([]);
    const left = await listKeys(s3.client, bucket);
    expect(manifests(left).length).toBe(4);
    expect(dumpKeys(left).length).toBe(4);
  }, 300_000);
});
