import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { backupIdTime } from '../../src/lib/keys.js';
import { listKeys, openMultipartUploads, runBundle, runCli, startS3, type TestS3 } from '../harness/index.js';

let s3: TestS3;
const HOUR = 3600_000;

const compact = (t: Date) =>
  t
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');

/** Writes a complete backup (dump + manifest, plus a verification record) at a chosen time. */
async function putBackup(
  bucket: string,
  prefix: string,
  time: Date,
  opts: { kind?: string; verified?: 'passed' | 'failed'; suffix?: string } = {},
) {
  const id = `${compact(time)}-${
    opts.suffix ??
    Math.floor(Math.random() * 65536)
      .toString(16)
      .padStart(4, '0')
  }`;
  const base = `${prefix}${id}/`;
  const put = (key: string, body: string) =>
    s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: base + key, Body: body }));
  await put('dump.pgdump.zst', 'x'.repeat(100));
  await put(
    'manifest.json',
    JSON.stringify({
      formatVersion: 1,
      backupId: id,
      kind: opts.kind ?? 'scheduled',
      startedAt: time.toISOString(),
      completedAt: time.toISOString(),
      artifacts: [{ name: 'dump', key: base + 'dump.pgdump.zst', bytes: 100, sha256: 'x' }],
      tables: [],
    }),
  );
  await put(
    `verifications/${compact(time)}-0000.json`,
    JSON.stringify({ formatVersion: 1, backupId: id, status: opts.verified ?? 'failed' }),
  );
  return id;
}

/** An independent oracle for the simple daily/weekly/monthly case: newest per bucket, newest first, in UTC. */
function expectedKeep(times: Date[], daily: number, weekly: number, monthly: number): Set<string> {
  const sorted = [...times].sort((a, b) => b.getTime() - a.getTime());
  const keep = new Set<string>();
  const week = (t: Date) => {
    const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
    d.setUTCDate(d.getUTCDate() + 4 - (d.getUTCDay() || 7));
    return `${d.getUTCFullYear()}-${Math.ceil(((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000 + 1) / 7)}`;
  };
  for (const [count, key] of [
    [daily, (t: Date) => t.toISOString().slice(0, 10)],
    [weekly, week],
    [monthly, (t: Date) => t.toISOString().slice(0, 7)],
  ] as [number, (t: Date) => string][]) {
    const seen = new Set<string>();
    for (const t of sorted) {
      if (seen.size >= count) break;
      if (!seen.has(key(t))) {
        seen.add(key(t));
        keep.add(t.toISOString());
      }
    }
    if (seen.size < count) keep.add(sorted[sorted.length - 1]!.toISOString()); // the oldest, while counts are left
  }
  return keep;
}

beforeAll(async () => {
  s3 = await startS3();
  Object.assign(process.env, s3.env);
});
afterAll(async () => s3?.stop());

const inputs = (bucket: string, extra: Record<string, string> = {}) => ({
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
  database: 'app',
  ...extra,
});

describe('prune-retention on S3', () => {
  let bucket: string;
  const times: Date[] = [];
  let oldVerified: string;
  let neighbourKeys: string[];

  beforeAll(async () => {
    bucket = await s3.createBucket('prune');
    const start = Date.UTC(2024, 10, 1, 2);
    for (let i = 0; i < 400; i++) times.push(new Date(start + i * 44 * HOUR)); // 400 backups over two years
    const ids: string[] = [];
    for (let i = 0; i < times.length; i += 20) {
      ids.push(
        ...(await Promise.all(times.slice(i, i + 20).map((t) => putBackup(bucket, 'postgres-backups/app/', t)))),
      );
    }
    // An old backup whose verification passed: the newest verified one, which the policy would delete.
    oldVerified = await putBackup(bucket, 'postgres-backups/app/', new Date(Date.UTC(2024, 9, 15, 2)), {
      verified: 'passed',
      suffix: 'beef',
    });
    // Neighbours that must survive: another database with a longer name, another prefix, a stray key.
    await putBackup(bucket, 'postgres-backups/app2/', new Date(Date.UTC(2024, 0, 1)));
    await putBackup(bucket, 'other/app/', new Date(Date.UTC(2024, 0, 1)));
    await s3.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'postgres-backups/app/README.txt', Body: 'not a backup' }),
    );
    neighbourKeys = [
      ...(await listKeys(s3.client, bucket, 'postgres-backups/app2/')),
      ...(await listKeys(s3.client, bucket, 'other/')),
      'postgres-backups/app/README.txt',
    ];
  }, 120_000);

  test('dry-run plans and deletes nothing', async () => {
    const before = await listKeys(s3.client, bucket);
    const run = await runBundle(
      'prune-retention',
      inputs(bucket, { 'keep-daily': '7', 'keep-weekly': '4', 'keep-monthly': '12', 'dry-run': 'true' }),
    );
    expect(run.errors).toEqual([]);
    expect(Number(run.outputs.deleted)).toBeGreaterThan(300);
    expect(await listKeys(s3.client, bucket)).toEqual(before);
    expect(run.summary).toContain('dry run: nothing deleted');
    expect(run.summary).toContain('🟥');
  });

  test('a listing that fails part-way deletes nothing and fails the step', async () => {
    // A proxy in front of the S3 server that answers 500 to every second page of a listing.
    const upstream = new URL(s3.endpoint);
    const proxy = http.createServer((req, res) => {
      if (req.method === 'GET' && /[?&]continuation-token=/.test(req.url ?? '')) {
        res.writeHead(500, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>');
        return;
      }
      const fwd = http.request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(fwd);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const before = await listKeys(s3.client, bucket);
    expect(before.length).toBeGreaterThan(1000); // so that the listing has a second page
    try {
      const run = await runBundle(
        'prune-retention',
        inputs(bucket, {
          's3-endpoint': `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
          'keep-daily': '7',
        }),
      );
      expect(run.exitCode).toBe(1);
      expect(run.errors.join('\n')).toMatch(
        /Listing s3:\/\/.*\/postgres-backups\/app\/ failed, so nothing was deleted/,
      );
    } finally {
      proxy.close();
    }
    expect(await listKeys(s3.client, bucket)).toEqual(before);
  });

  test('no keep rule is an error, never "delete everything"', async () => {
    const run = await runBundle('prune-retention', inputs(bucket));
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('No keep rule is set');
  });

  test('prune keeps exactly the planned backups, the newest verified one, and every neighbour', async () => {
    const run = await runBundle(
      'prune-retention',
      inputs(bucket, { 'keep-daily': '7', 'keep-weekly': '4', 'keep-monthly': '12' }),
    );
    expect(run.errors).toEqual([]);
    const left = await listKeys(s3.client, bucket, 'postgres-backups/app/');
    const leftIds = new Set(left.map((k) => k.split('/')[2]).filter((s) => s && s !== 'README.txt'));
    const expected = expectedKeep(times, 7, 4, 12);
    const keptTimes = new Set(
      [...leftIds].filter((id) => id !== oldVerified).map((id) => backupIdTime(id!)!.toISOString()),
    );
    expect(keptTimes).toEqual(expected);
    expect(leftIds.has(oldVerified)).toBe(true);
    expect(Number(run.outputs.kept)).toBe(expected.size + 1);
    expect(Number(run.outputs.deleted)).toBe(401 - expected.size - 1);
    expect(Number(run.outputs['freed-bytes'])).toBeGreaterThan(0);
    for (const k of neighbourKeys) expect(await listKeys(s3.client, bucket, k)).toEqual([k]);
    const plan = JSON.parse(readFileSync(run.outputs['plan-file']!, 'utf8'));
    expect(plan.keep.find((k: { id: string }) => k.id === oldVerified).reasons).toEqual(['newest verified backup']);
    expect(plan.keep[0].reasons).toEqual(['daily 1/7', 'weekly 1/4', 'monthly 1/12', 'newest complete backup']);
    expect(run.summary).toContain('newest verified backup');
    // Idempotent: a second run deletes nothing more.
    const again = await runBundle(
      'prune-retention',
      inputs(bucket, { 'keep-daily': '7', 'keep-weekly': '4', 'keep-monthly': '12' }),
    );
    expect(again.outputs.deleted).toBe('0');
  });
});

describe('incomplete backups, stale uploads and kinds', () => {
  test('incomplete backups and multipart uploads go only after the grace period; other kinds are untouched', async () => {
    const bucket = await s3.createBucket('grace');
    const now = Date.now();
    const keepNewest = await putBackup(bucket, 'postgres-backups/app/', new Date(now - 2 * HOUR));
    const older = await putBackup(bucket, 'postgres-backups/app/', new Date(now - 50 * HOUR));
    const premigration = await putBackup(bucket, 'postgres-backups/app/', new Date(now - 100 * HOUR), {
      kind: 'pre-migration',
    });
    const oldIncomplete = `${compact(new Date(now - 30 * HOUR))}-dead`;
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `postgres-backups/app/${oldIncomplete}/dump.pgdump.zst`,
        Body: 'partial',
      }),
    );
    await s3.client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: `postgres-backups/app/${oldIncomplete}/dump2` }),
    );
    await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'postgres-backups/app2/x/dump' }));
    // The grace is wide enough that the fresh one stays within it however slowly the bundle starts.
    await new Promise((r) => setTimeout(r, 16_000));
    const freshIncomplete = `${compact(new Date(now - 3 * HOUR))}-f00d`;
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `postgres-backups/app/${freshIncomplete}/dump.pgdump.zst`,
        Body: 'running',
      }),
    );

    const run = await runBundle(
      'prune-retention',
      inputs(bucket, { 'keep-last': '1', kind: 'scheduled', 'incomplete-grace': '15s' }),
    );
    expect(run.errors).toEqual([]);
    const ids = new Set((await listKeys(s3.client, bucket, 'postgres-backups/app/')).map((k) => k.split('/')[2]));
    expect(ids).toEqual(new Set([keepNewest, premigration, freshIncomplete]));
    expect(ids.has(older)).toBe(false);
    expect(await openMultipartUploads(s3.client, bucket)).toBe(1); // only the neighbour's
    expect(run.summary).toContain('within the grace period');
    expect(run.summary).toContain('kind pre-migration, not scheduled');
  });
});

describe('CLI plan-retention', () => {
  test('reads times from stdin, touches no storage, prints keep and remove', async () => {
    const input = JSON.stringify([
      '2026-11-20T02:00:00Z',
      { time: '2026-11-21T02:00:00Z', id: 'newest' },
      '2026-11-21T01:00:00Z',
      '2026-10-01T02:00:00Z',
    ]);
    const out = await runCli(['plan-retention', '--keep-daily', '2', '--keep-monthly', '2'], {}, input);
    expect(out.stderr).toBe('');
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({
      keep: [
        { time: '2026-11-21T02:00:00Z', id: 'newest', reasons: ['daily 1/2', 'monthly 1/2'] },
        { time: '2026-11-20T02:00:00Z', id: null, reasons: ['daily 2/2'] },
        { time: '2026-10-01T02:00:00Z', id: null, reasons: ['monthly 2/2'] },
      ],
      remove: [{ time: '2026-11-21T01:00:00Z', id: null }],
    });
  });
  test('bad input is named', async () => {
    const out = await runCli(['plan-retention', '--keep-daily', 'seven'], {}, '[]');
    expect(out.exitCode).toBe(1);
    expect(out.stderr).toContain('Input `keep-daily`: "seven" is not a whole number');
    const tz = await runCli(['plan-retention', '--keep-daily', '1', '--timezone', 'Mars/Olympus'], {}, '[]');
    expect(tz.stderr).toContain('Input `timezone`: "Mars/Olympus" is not an IANA time zone');
    const notJson = await runCli(['plan-retention', '--keep-daily', '1'], {}, 'nope');
    expect(notJson.stderr).toContain('reads a JSON array on standard input');
  });
});
