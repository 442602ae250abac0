import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import {
  cliArgs,
  listKeys,
  runBundle,
  runCli,
  startPostgres,
  startS3,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

/**
 * A manifest whose dump is gone (deleted by hand, lost by a store, a half-finished cleanup of an older version) is a
 * broken backup for every reader: `list` says so with the reason, verify of `latest` skips it and verifies the
 * newest intact one, verify of its id fails naming the reason, and retention never counts it as the newest
 * complete backup (it is removed, the intact one kept).
 */
let pg: TestPostgres;
let s3: TestS3;
let bucket: string;
let source: string;
let intact: string;
let noDump: string;
let truncated: string;

const s3Inputs = (extra: Record<string, string> = {}) => ({
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
  database: 'app',
  ...extra,
});

async function backup(): Promise<{ id: string; manifestKey: string; dumpKey: string }> {
  const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(source), ...s3Inputs() });
  expect(run.errors).toEqual([]);
  const manifestKey = run.outputs['manifest-key']!;
  const keys = await listKeys(s3.client, bucket, manifestKey.replace(/manifest\.json$/, ''));
  return { id: run.outputs['backup-id']!, manifestKey, dumpKey: keys.find((k) => /\/dump\.pgdump/.test(k))! };
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  source = await pg.createDatabase('broken_src');
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, label text);
     INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g;`,
    source,
  );
  bucket = await s3.createBucket('broken');
  intact = (await backup()).id;
  // Backup ids carry the second they were taken: keep them apart and in order.
  await new Promise((r) => setTimeout(r, 1100));
  const b = await backup();
  truncated = b.id;
  const dump = await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: b.dumpKey, Body: 'cut short' }));
  expect(dump.$metadata.httpStatusCode).toBe(200);
  await new Promise((r) => setTimeout(r, 1100));
  const c = await backup();
  noDump = c.id;
  await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: c.dumpKey }));
}, 180_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

test('list reports both broken backups with their reason, never as complete', async () => {
  const out = await runCli(['list', ...cliArgs(s3Inputs())], s3.env);
  expect(out.exitCode).toBe(0);
  const rows = JSON.parse(out.stdout) as { backupId: string; complete: boolean; broken: string | null }[];
  const byId = new Map(rows.map((r) => [r.backupId, r]));
  expect(byId.get(intact)).toMatchObject({ complete: true, broken: null });
  expect(byId.get(noDump)).toMatchObject({ complete: false, broken: 'its manifest exists but its dump does not' });
  expect(byId.get(truncated)?.complete).toBe(false);
  expect(byId.get(truncated)?.broken).toMatch(
    /its manifest records \d+ bytes for .*dump\.pgdump\.zst, but 9 are stored/,
  );
  expect(out.stderr).toMatch(new RegExp(`${noDump}\\s+BROKEN .*its manifest exists but its dump does not`));
});

test('verify of latest skips the broken backups, says so, and verifies the newest intact one', async () => {
  const run = await runBundle('verify-restore', { ...s3Inputs(), 'target-url': pg.url('postgres') });
  expect(run.errors).toEqual([]);
  expect(run.outputs).toMatchObject({ status: 'passed', 'backup-id': intact });
  expect(run.logs).toContain(`Backup ${noDump} is broken (its manifest exists but its dump does not) and was skipped.`);
});

test.each([
  ['no dump', () => noDump, /is broken: its manifest exists but its dump does not/],
  ['a dump of another size', () => truncated, /is broken: its manifest records \d+ bytes/],
])('verify of a backup with %s fails with the reason, no stack trace', async (_label, id, message) => {
  const run = await runBundle('verify-restore', {
    ...s3Inputs(),
    'target-url': pg.url('postgres'),
    'backup-id': id(),
  });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(message);
  expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
  expect(run.outputs.status).toBe('failed');
});

test('retention never counts a broken backup as the newest complete one: keep-last 1 keeps the intact backup', async () => {
  const dry = await runBundle('prune-retention', s3Inputs({ 'keep-last': '1', 'dry-run': 'true' }));
  expect(dry.errors).toEqual([]);
  const plan = JSON.parse(readFileSync(dry.outputs['plan-file']!, 'utf8')) as {
    keep: { id: string; reasons: string[] }[];
    remove: { id: string; note?: string }[];
  };
  expect(plan.keep.map((k) => k.id)).toContain(intact);
  expect(plan.keep.find((k) => k.id === intact)!.reasons).toContain('newest complete backup');
  expect(plan.remove.find((r) => r.id === noDump)?.note).toMatch(/^broken: its manifest exists but its dump does not/);
  expect(plan.keep.map((k) => k.id)).not.toContain(noDump);

  const run = await runBundle('prune-retention', s3Inputs({ 'keep-last': '1' }));
  expect(run.errors).toEqual([]);
  const left = await listKeys(s3.client, bucket, 'postgres-backups/app/');
  expect(left.some((k) => k.startsWith(`postgres-backups/app/${intact}/dump.`))).toBe(true);
  expect(left.some((k) => k === `postgres-backups/app/${intact}/manifest.json`)).toBe(true);
  expect(left.some((k) => k.startsWith(`postgres-backups/app/${noDump}/`))).toBe(false);
  // Every manifest left names a dump that exists.
  for (const m of left.filter((k) => k.endsWith('/manifest.json'))) {
    const base = m.replace(/manifest\.json$/, '');
    expect(left.some((k) => k.startsWith(`${base}dump.`))).toBe(true);
  }
});
