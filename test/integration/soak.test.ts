import path from 'node:path';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../harness/fault-proxy.js';
import { exec, runBundle, startPostgres, startS3, tempDir, type TestPostgres, type TestS3 } from '../harness/index.js';
import { manifestIds, manifestViolations, seedBackups } from '../harness/invariants.js';

/**
 * Random faults, seeded so that a failure replays: a soak of backups, retention under delete and list faults, and
 * the store's invariant after arbitrary schedules. Small databases keep it quick.
 */

let pg: TestPostgres;
let s3: TestS3;
let proxy: FaultProxy;
let small: string;
const work = tempDir();
const dbPrefix = 'postgres-backups/app/';

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  proxy = await startFaultProxy(s3.endpoint);
  small = await pg.createDatabase('small');
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, label text);
     INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g;`,
    small,
  );
  Object.assign(process.env, s3.env);
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([pg?.stop(), s3?.stop()]);
});

beforeEach(() => proxy.setRules([]));

const s3Inputs = (bucket: string, extra: Record<string, string> = {}) => ({
  's3-bucket': bucket,
  's3-endpoint': proxy.endpoint,
  's3-force-path-style': 'true',
  database: 'app',
  ...extra,
});
const backup = (bucket: string, extra: Record<string, string> = {}) =>
  runBundle('pgdump-to-s3', { 'database-url': pg.url(small), ...s3Inputs(bucket, extra) });
const prune = (bucket: string, extra: Record<string, string> = {}) =>
  runBundle('prune-retention', { ...s3Inputs(bucket), 'keep-last': '2', ...extra });
const noBug = /Unexpected error|a bug|^\s+at /m;

test('retention under random delete and list faults never removes a kept, the newest complete or the newest verified backup', async () => {
  const bucket = await s3.createBucket('prune-random');
  const ids = await seedBackups(s3.client, bucket, 30, 5);
  // keep-last 2: the newest verified (index 5) is kept only by its own protection.
  const protectedIds = [ids[5]!, ids[28]!, ids[29]!];
  for (const seed of [11, 12, 13]) {
    proxy.setRules(
      [
        { fault: 'internal', op: 'DeleteObjects', probability: 0.4 },
        { fault: 'reset-after', op: 'DeleteObjects', probability: 0.2 },
        { fault: 'internal', op: 'ListObjectsV2', laterPagesOnly: true, probability: 0.5 },
        { fault: 'slowdown', op: ['ListObjectsV2', 'GetObject'], probability: 0.1 },
      ],
      seed,
    );
    const run = await prune(bucket);
    expect(run.logs).not.toMatch(noBug);
    const present = await manifestIds(s3.client, bucket, dbPrefix);
    for (const id of protectedIds) expect(present).toContain(id);
    expect(await manifestViolations(s3.client, bucket)).toEqual([]);
  }
  expect(proxy.injected.length).toBeGreaterThan(0);
  proxy.setRules([]);
  expect((await prune(bucket)).errors).toEqual([]);
  expect(await manifestIds(s3.client, bucket, dbPrefix)).toEqual([...protectedIds].sort());
}, 300_000);

test('soak: 10 backups, plain and age, with 15% 5xx and 3% resets: each complete and restorable, or absent', async () => {
  const bucket = await s3.createBucket('soak');
  const keyFile = path.join(work, 'soak-age.key');
  await exec('age-keygen', ['-o', keyFile]);
  const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
  const identity = (await exec('grep', ['^AGE-SECRET-KEY', keyFile])).toString().trim();
  // Rules are tried in order, so each probability is conditional on the ones before not firing.
  proxy.setRules(
    [
      { fault: 'slowdown', probability: 0.075 },
      { fault: 'internal', probability: 0.075 / 0.925 },
      { fault: 'reset-before', probability: 0.015 / 0.85 },
      { fault: 'reset-after', probability: 0.015 / 0.835 },
    ],
    2026,
  );
  const succeeded: string[] = [];
  let failed = 0;
  for (let i = 0; i < 10; i++) {
    const run = await backup(bucket, i % 2 ? { 'age-recipients': recipient } : {});
    if (run.exitCode === 0) succeeded.push(run.outputs['backup-id']!);
    else {
      failed++;
      expect(run.errors).toHaveLength(1);
      expect(run.logs).not.toMatch(noBug);
    }
  }
  proxy.setRules([]);
  const faults = proxy.injected.filter((f) => f.fault !== 'latency');
  expect(faults.length).toBeGreaterThan(0);
  // Complete backups are exactly the ones reported as succeeded; failed ones left no manifest.
  expect(await manifestIds(s3.client, bucket, dbPrefix)).toEqual([...succeeded].sort());
  expect(succeeded.length + failed).toBe(10);
  expect(await manifestViolations(s3.client, bucket)).toEqual([]);
  for (const id of succeeded) {
    const verify = await runBundle('verify-restore', {
      ...s3Inputs(bucket),
      's3-endpoint': s3.endpoint,
      'target-url': pg.url('postgres'),
      'backup-id': id,
      'age-identity': identity,
    });
    expect(verify.errors).toEqual([]);
    expect(verify.outputs.status).toBe('passed');
  }
}, 600_000);

test('property: after any seeded fault schedule, every manifest names objects with its size and SHA-256', async () => {
  const bucket = await s3.createBucket('property');
  const faults: FaultRule['fault'][] = ['slowdown', 'internal', 'reset-before', 'reset-after'];
  const ops: NonNullable<FaultRule['op']>[] = [
    'PutObject',
    'GetObject',
    'HeadObject',
    'DeleteObjects',
    'ListObjectsV2',
    'CompleteMultipartUpload',
  ];
  for (const seed of [101, 202, 303, 404]) {
    let x = seed;
    const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const rules: FaultRule[] = Array.from({ length: 3 }, () => ({
      fault: faults[Math.floor(next() * faults.length)]!,
      op: ops[Math.floor(next() * ops.length)]!,
      probability: 0.2 + next() * 0.6,
      ...(next() < 0.5 ? { key: /manifest\.json$/ } : {}),
    }));
    proxy.setRules(rules, seed);
    const runs = [await backup(bucket), await prune(bucket, { 'incomplete-grace': '0s' })];
    proxy.setRules([]);
    for (const run of runs) expect({ seed, logs: noBug.test(run.logs) }).toEqual({ seed, logs: false });
    expect({ seed, problems: await manifestViolations(s3.client, bucket) }).toEqual({ seed, problems: [] });
  }
}, 400_000);
