import {
  DeleteObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type ObjectLockMode,
} from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import {
  fixture,
  getObjectBytes,
  listKeys,
  runBundle,
  startPostgres,
  startS3,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

// S3 Object Lock through the bundles: pgdump-to-s3 writes every object of a backup locked, verify-restore locks its
// record alike (from the manifest), prune-retention leaves what the store still protects. The test S3 server
// implements Object Lock as S3 documents it (test/harness/object-lock.cjs).

let pg: TestPostgres;
let s3: TestS3;
let bigUrl: string;
beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const db = await pg.createDatabase('lock');
  await pg.query(fixture('clinic.sql'), db);
  // About 8 MB of incompressible text, so that the dump is a multipart upload of 5 MiB parts.
  await pg.query(
    `CREATE TABLE public.blobs AS SELECT g AS id, md5(g::text) || md5(random()::text) || md5(random()::text) AS t
       FROM generate_series(1, 90000) g`,
    db,
  );
  bigUrl = pg.url(db);
}, 60_000);
afterAll(async () => Promise.all([pg?.stop(), s3?.stop()]));

const DAY = 86_400_000;
const s3Inputs = (bucket: string) => ({
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
  sse: 'none',
});
const errorName = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { name?: string }) => e.name,
  );
const retention = async (bucket: string, key: string) => {
  const r = await s3.client.send(new GetObjectRetentionCommand({ Bucket: bucket, Key: key }));
  return { mode: r.Retention?.Mode, until: r.Retention?.RetainUntilDate?.toISOString() };
};

test('a locked backup: every object retained until its start + days, the record of its verification too, none deletable', async () => {
  const bucket = await s3.createBucket('locked', { objectLock: true });
  const backup = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': bigUrl,
      database: 'app',
      ...s3Inputs(bucket),
      compression: 'none',
      'part-size-mb': '5',
      'object-lock-mode': 'governance',
      'object-lock-days': '30',
    },
    s3.env,
  );
  expect(backup.errors).toEqual([]);
  expect(backup.exitCode).toBe(0);
  const manifest = JSON.parse(
    (await getObjectBytes(s3.client, bucket, backup.outputs['manifest-key']!)).toString('utf8'),
  ) as { startedAt: string; objectLock: { mode: string; days: number; retainUntil: string } };
  const until = new Date(Date.parse(manifest.startedAt) + 30 * DAY).toISOString();
  expect(manifest.objectLock).toEqual({ mode: 'governance', days: 30, retainUntil: until });
  expect(Number(backup.outputs.bytes)).toBeGreaterThan(5 * 1024 * 1024); // the dump went up in parts
  expect(backup.summary).toContain(`| Object Lock | governance, every object retained until ${until} (30 days) |`);

  const prefix = backup.outputs['manifest-key']!.replace(/manifest\.json$/, '');
  const keys = await listKeys(s3.client, bucket, prefix);
  expect(keys.map((k) => k.slice(prefix.length)).sort()).toEqual([
    'RECOVERY.md',
    'dump.pgdump',
    'globals.sql.zst',
    'manifest.json',
  ]);
  for (const key of keys) expect(await retention(bucket, key)).toEqual({ mode: 'GOVERNANCE', until });
  expect(
    await errorName(s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: backup.outputs['dump-key'] }))),
  ).toBe('AccessDenied');

  // The dump arrived intact (the SHA-256 is checked) and the verification record is locked like the backup.
  const verify = await runBundle(
    'verify-restore',
    { database: 'app', 'target-url': pg.url(), ...s3Inputs(bucket) },
    s3.env,
  );
  expect(verify.errors).toEqual([]);
  expect(verify.outputs.status).toBe('passed');
  expect(await retention(bucket, verify.outputs['verification-key']!)).toEqual({ mode: 'GOVERNANCE', until });

  // Someone with only the bucket reads the lock in RECOVERY.md; an auditor in the evidence report.
  const recovery = (await getObjectBytes(s3.client, bucket, prefix + 'RECOVERY.md')).toString('utf8');
  expect(recovery).toContain(
    `| S3 Object Lock | governance mode: no object of this backup can be deleted or overwritten before ${until} |`,
  );
  const report = await runBundle('backup-report', { databases: 'app', ...s3Inputs(bucket) }, s3.env);
  expect(report.errors).toEqual([]);
  const json = JSON.parse(readFileSync(report.outputs['json-path']!, 'utf8')) as {
    databases: { backups: { backupId: string; objectLock?: unknown }[] }[];
  };
  expect(json.databases[0]!.backups.map((b) => [b.backupId, b.objectLock])).toEqual([
    [backup.outputs['backup-id'], { mode: 'governance', retainUntil: until }],
  ]);
  expect(readFileSync(report.outputs['markdown-path']!, 'utf8')).toContain(`| ${until} (Object Lock, governance) |`);
  expect(readFileSync(report.outputs['html-path']!, 'utf8')).toContain(`${until} (Object Lock, governance)`);
}, 180_000);

test('a bucket without Object Lock: a clear error naming the bucket setting, before anything is dumped', async () => {
  const bucket = await s3.createBucket('unlocked');
  const r = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': bigUrl,
      database: 'app',
      ...s3Inputs(bucket),
      'object-lock-mode': 'compliance',
      'object-lock-days': '7',
    },
    s3.env,
  );
  expect(r.exitCode).toBe(1);
  expect(r.errors).toHaveLength(1);
  expect(r.errors[0]).toContain(`bucket "${bucket}" does not have S3 Object Lock enabled`);
  expect(r.errors[0]).toContain('ObjectLockEnabled = Enabled');
  expect(r.errors[0]).toContain('Nothing was dumped');
  expect(r.logs).not.toMatch(/Backing up/);
  expect(r.logs).not.toMatch(/\n\s+at /); // no stack trace
  expect(await listKeys(s3.client, bucket)).toEqual([]);
});

test.each([
  [{ 'object-lock-mode': 'governance' }, 'object-lock-mode', '`object-lock-days` is empty'],
  [{ 'object-lock-days': '30' }, 'object-lock-mode', 'is empty, but `object-lock-days` is set'],
  [{ 'object-lock-mode': 'legal-hold', 'object-lock-days': '30' }, 'object-lock-mode', 'is not an Object Lock mode'],
  [{ 'object-lock-mode': 'compliance', 'object-lock-days': '0' }, 'object-lock-days', 'not a positive whole number'],
  [{ 'object-lock-mode': 'compliance', 'object-lock-days': '1.5' }, 'object-lock-days', 'not a positive whole number'],
  [{ 'object-lock-mode': 'compliance', 'object-lock-days': '30d' }, 'object-lock-days', 'not a positive whole number'],
])('bad Object Lock inputs %j are refused, naming the input, before any work', async (lock, input, problem) => {
  const bucket = await s3.createBucket('badlock', { objectLock: true });
  const r = await runBundle('pgdump-to-s3', { 'database-url': bigUrl, ...s3Inputs(bucket), ...lock }, s3.env);
  expect(r.exitCode).toBe(1);
  expect(r.errors).toHaveLength(1);
  expect(r.errors[0]).toMatch(new RegExp(`^Input \`${input}\`: `));
  expect(r.errors[0]).toContain(problem);
  expect(await listKeys(s3.client, bucket)).toEqual([]);
});

test('prune-retention leaves what the store still locks, "locked until <date>", in a dry run and for real', async () => {
  const bucket = await s3.createBucket('prune-lock', { objectLock: true });
  const db = 'postgres-backups/app/';
  const now = Date.now();
  const put = (key: string, body: string, lock?: { mode: ObjectLockMode; until: number }) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: db + key,
        Body: body,
        ...(lock
          ? {
              ObjectLockMode: lock.mode,
              ObjectLockRetainUntilDate: new Date(lock.until),
              ChecksumAlgorithm: 'CRC32' as const,
            }
          : {}),
      }),
    );
  type Lock = { mode: ObjectLockMode; until: number };
  const seed = async (id: string, o: { dump?: Lock; manifest?: Lock | 'none' } = {}) => {
    await put(`${id}/dump.pgdump.zst`, `dump of ${id}`, o.dump);
    if (o.manifest !== 'none')
      await put(
        `${id}/manifest.json`,
        JSON.stringify({
          formatVersion: 1,
          backupId: id,
          kind: 'scheduled',
          startedAt: '2026-01-01T00:00:00Z',
          completedAt: '2026-01-01T00:00:00Z',
          artifacts: [{ name: 'dump', key: `${db}${id}/dump.pgdump.zst`, bytes: `dump of ${id}`.length, sha256: 'x' }],
          tables: [],
        }),
        o.manifest,
      );
  };
  const inADay = now + DAY;
  const inTwoDays = now + 2 * DAY;
  const expiresSoon = now + 3000;
  // Old backups the policy deletes: locked whole, locked only in its dump, locked briefly, not locked; an
  // incomplete one locked; the newest, kept.
  const governanceADay: Lock = { mode: 'GOVERNANCE', until: inADay };
  await seed('20260101T000000Z-0000', { dump: governanceADay, manifest: governanceADay });
  await seed('20260102T000000Z-0001', { dump: { mode: 'COMPLIANCE', until: inTwoDays } });
  await seed('20260103T000000Z-0002', { dump: { mode: 'GOVERNANCE', until: expiresSoon } });
  await seed('20260104T000000Z-0003');
  await seed('20260105T000000Z-0004', { dump: governanceADay, manifest: 'none' });
  await seed('20260106T000000Z-0005');
  const before = (await listKeys(s3.client, bucket)).sort();
  const inputs = { database: 'app', ...s3Inputs(bucket), 'keep-last': '1', 'incomplete-grace': '1s' };

  await new Promise((r) => setTimeout(r, Math.max(0, expiresSoon - Date.now()) + 500));
  const dry = await runBundle('prune-retention', { ...inputs, 'dry-run': 'true' }, s3.env);
  expect(dry.errors).toEqual([]);
  expect(dry.outputs).toMatchObject({ kept: '1', deleted: '2', locked: '3' });
  expect((await listKeys(s3.client, bucket)).sort()).toEqual(before);
  const iso = (t: number) => new Date(new Date(t).toISOString()).toISOString();
  expect(dry.summary).toMatch(
    new RegExp(
      `\\| \`20260101T000000Z-0000\` \\| 2026-01-01T00:00:00.000Z \\| \\d+ B \\| locked until ${iso(inADay).replace(/\./g, '\\.')} \\(S3 Object Lock, governance mode\\) \\|`,
    ),
  );
  expect(dry.summary).toContain(`locked until ${iso(inTwoDays)} (S3 Object Lock, compliance mode)`);
  expect(dry.summary).toContain('🔒');

  const real = await runBundle('prune-retention', inputs, s3.env);
  expect(real.errors).toEqual([]);
  expect(real.exitCode).toBe(0);
  expect(real.outputs).toMatchObject({ kept: '1', deleted: '2', locked: '3' });
  const plan = JSON.parse(readFileSync(real.outputs['plan-file']!, 'utf8')) as {
    locked: { id: string; lockedUntil: string }[];
    remove: { id: string }[];
  };
  expect(plan.locked.map((l) => [l.id, l.lockedUntil]).sort()).toEqual([
    ['20260101T000000Z-0000', iso(inADay)],
    ['20260102T000000Z-0001', iso(inTwoDays)],
    ['20260105T000000Z-0004', iso(inADay)],
  ]);
  expect(plan.remove.map((r) => r.id).sort()).toEqual(['20260103T000000Z-0002', '20260104T000000Z-0003']);
  // Every object of the locked backups is still there: the manifest of the one locked only in its dump included.
  expect((await listKeys(s3.client, bucket)).sort()).toEqual(
    before.filter((k) => !k.includes('20260103T000000Z-0002') && !k.includes('20260104T000000Z-0003')),
  );
  await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${db}20260102T000000Z-0001/manifest.json` }));
}, 120_000);
