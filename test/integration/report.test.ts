import { PutObjectCommand } from '@aws-sdk/client-s3';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { cliArgs, listKeys, runBundle, runCli, startS3, tempDir, type TestS3 } from '../harness/index.js';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => s3?.stop());

const DAY = 86400_000;
const compact = (t: Date) =>
  t
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
const ymd = (t: Date) => t.toISOString().slice(0, 10);
const ym = (t: Date) => t.toISOString().slice(0, 7);

interface Built {
  times: Date[];
  verifications: { backup: string; at: Date; status: 'passed' | 'failed'; rto: number }[];
  incomplete: Date[];
  skippedDays: string[];
  skippedMonth: string;
}

/**
 * A stream with a backup every day for 125 days, except two recent days and a whole month (two months back), one
 * old failed backup (a prefix without a manifest), and verifications every tenth backup, one of them failed.
 * Backups are written at the hour opposite the current one, so that no backup sits on the edge of the period.
 */
async function buildStream(bucket: string, prefix: string, now: Date): Promise<Built> {
  const hour = (now.getUTCHours() + 12) % 24;
  const monthBack = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 15));
  const built: Built = { times: [], verifications: [], incomplete: [], skippedDays: [], skippedMonth: ym(monthBack) };
  const put = (key: string, body: string) =>
    s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: body }));
  const writes: Promise<unknown>[] = [];
  for (let d = 125; d >= 1; d--) {
    const day = new Date(now.getTime() - d * DAY);
    const time = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), hour, 0, 0));
    if (time >= now) continue;
    if (d === 5 || d === 6) {
      built.skippedDays.push(ymd(time));
      continue;
    }
    if (ym(time) === built.skippedMonth) continue;
    const id = `${compact(time)}-${String(d).padStart(4, '0')}`;
    if (d === 40) {
      // Failed: its dump was left without a manifest.
      built.incomplete.push(time);
      writes.push(put(`${id}/dump.pgdump.zst`, 'partial'));
      continue;
    }
    built.times.push(time);
    const bytes = 1000 + d;
    const artifact = {
      name: 'dump',
      key: `${prefix}${id}/dump.pgdump.zst`,
      bytes,
      sha256: d.toString(16).padStart(64, '0'),
      format: 'custom',
      compression: 'zstd',
      encryption: d % 2 ? { scheme: 'age', recipients: ['age1x', 'age1y'] } : null,
    };
    writes.push(put(`${id}/dump.pgdump.zst`, 'x'.repeat(bytes)));
    writes.push(
      put(
        `${id}/manifest.json`,
        JSON.stringify({
          formatVersion: 1,
          backupId: id,
          kind: 'scheduled',
          startedAt: time.toISOString(),
          completedAt: new Date(time.getTime() + 60_000).toISOString(),
          database: 'app',
          artifacts: [artifact],
          tables: [],
          totalRows: 0,
          github: {
            repository: 'octo-org/app',
            runId: String(d),
            runUrl: `https://github.com/octo-org/app/actions/runs/${d}`,
            sha: 'abcdef0123456789abcdef0123456789abcdef01',
          },
        }),
      ),
    );
    if (d % 10 === 0) {
      const at = new Date(time.getTime() + 3 * 3600_000);
      const status = d === 20 ? 'failed' : 'passed';
      const rto = 60 + d;
      built.verifications.push({ backup: id, at, status, rto });
      writes.push(
        put(
          `${id}/verifications/${compact(at)}-0000.json`,
          JSON.stringify({
            formatVersion: 1,
            backupId: id,
            status,
            mode: 'verify',
            verifiedAt: at.toISOString(),
            rtoSeconds: rto,
            rpoSeconds: 3 * 3600,
            timings: {},
            tablesChecked: 3,
            rowsChecked: 10,
            failures: status === 'failed' ? ['public.visits: 9 rows, 10 expected'] : [],
            versions: {},
            github: null,
          }),
        ),
      );
    }
  }
  await Promise.all(writes);
  return built;
}

interface ReportJson {
  compliant: boolean;
  databases: {
    database: string;
    problems: string[];
    backups: { backupId: string; encryption: string; github: { runUrl: string } | null }[];
    verifications: { status: string }[];
    failures: { what: string; backupId: string; detail: string }[];
    retention: { missing: string[]; rules: { rule: string; filled: number; missing: number }[] };
    freshness: { ok: boolean; newestVerified: { backupId: string } | null };
    objectives: { rto: { worst: number; count: number; ok: boolean }; backupGap: { worst: number } };
    totals: { backups: number; verificationsPassed: number; verificationsFailed: number };
  }[];
}

test('the evidence report counts every backup, verification, failure and missing slot of a bucket the test built', async () => {
  const bucket = await s3.createBucket('report');
  const now = new Date();
  const built = await buildStream(bucket, 'evidence/app/', now);
  const inputs = {
    's3-bucket': bucket,
    's3-prefix': 'evidence',
    's3-endpoint': s3.endpoint,
    's3-force-path-style': 'true',
    databases: 'app',
    since: '90d',
    expect: 'keep-daily: 14, keep-monthly: 4, max-age: 9d',
    'rto-target': '75s',
    'rpo-target': '26h',
  };
  const run = await runBundle('backup-report', inputs, s3.env);
  expect(run.errors).toEqual([]);
  expect(run.outputs.compliant).toBe('false');
  const report = JSON.parse(readFileSync(run.outputs['json-path']!, 'utf8')) as ReportJson;
  const app = report.databases[0]!;

  // The oracle: what the test wrote, filtered to the period independently.
  const from = now.getTime() - 90 * DAY;
  const times = built.times.filter((t) => t.getTime() >= from);
  const verifs = built.verifications.filter((v) => v.at.getTime() >= from);
  expect(app.totals.backups).toBe(times.length);
  expect(app.backups.map((b) => b.backupId.slice(0, 16))).toEqual(times.map(compact));
  expect(app.totals.verificationsPassed).toBe(verifs.filter((v) => v.status === 'passed').length);
  expect(app.totals.verificationsFailed).toBe(1);
  const failedVerification = verifs.find((v) => v.status === 'failed')!;
  expect(app.failures.map((f) => `${f.what} ${f.backupId.slice(0, 16)}`).sort()).toEqual(
    [
      ...built.incomplete.filter((t) => t.getTime() >= from).map((t) => `backup ${compact(t)}`),
      `verification ${failedVerification.backup.slice(0, 16)}`,
    ].sort(),
  );
  expect(app.failures.find((f) => f.what === 'verification')!.detail).toBe('public.visits: 9 rows, 10 expected');

  // Retention: exactly the two skipped days and the skipped month are missing.
  expect(app.retention.missing).toEqual([
    ...[...built.skippedDays].reverse().map((d) => `daily ${d}: no backup`),
    `monthly ${built.skippedMonth}: no backup`,
  ]);
  expect(app.retention.rules.find((r) => r.rule === 'daily')).toMatchObject({ filled: 11, missing: 2 });

  // Objectives: the worst passed RTO, and the longest gap between backups in the period (the skipped month).
  const passed = verifs.filter((v) => v.status === 'passed');
  expect(app.objectives.rto.worst).toBe(Math.max(...passed.map((v) => v.rto)));
  expect(app.objectives.rto.count).toBe(passed.length);
  let gap = (now.getTime() - times.at(-1)!.getTime()) / 1000;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i]!.getTime() - times[i - 1]!.getTime()) / 1000);
  expect(app.objectives.backupGap.worst).toBeCloseTo(gap, 0);
  // Every tenth day is verified and the newest verification (day 10) passed: within max-age 9d? No: 10 days old.
  expect(app.freshness.newestVerified!.backupId.slice(-4)).toBe('0010');
  expect(app.freshness.ok).toBe(false);
  expect(app.problems).toContain('RTO target missed');

  // Who ran each backup and how it is encrypted.
  expect(app.backups.every((b) => /actions\/runs\/\d+$/.test(b.github!.runUrl))).toBe(true);
  expect(new Set(app.backups.map((b) => b.encryption))).toEqual(
    new Set(['age (2 recipients)', 'none (server-side only)']),
  );

  // All three stored in the bucket under <prefix>/<database>/reports/<time>.*
  const stored = await listKeys(s3.client, bucket, 'evidence/app/reports/');
  expect(stored.map((k) => k.replace(/\d{8}T\d{6}Z/, 'T'))).toEqual([
    'evidence/app/reports/T.html',
    'evidence/app/reports/T.json',
    'evidence/app/reports/T.md',
  ]);

  // The job summary is the Markdown, with Mermaid charts of RTO and size.
  expect(run.summary.trimEnd()).toBe(readFileSync(run.outputs['markdown-path']!, 'utf8').trimEnd());
  expect(run.summary.match(/```mermaid\nxychart-beta/g)).toHaveLength(2);
  expect(run.summary).toContain(`monthly ${built.skippedMonth}: no backup`);

  // The HTML in a real browser: it renders, its charts are there, it fetches nothing and throws nothing.
  const executablePath = process.env.CHROME_PATH ?? '/usr/bin/chromium-headless-shell';
  expect(existsSync(executablePath)).toBe(true);
  const browser = await puppeteer.launch({ executablePath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.setViewport({ width: 1200, height: 900 });
    const url = `file://${run.outputs['html-path']}`;
    await page.goto(url, { waitUntil: 'load' });
    expect(requests).toEqual([url]);
    expect(errors).toEqual([]);
    expect(await page.$eval('#verdict', (e) => e.textContent)).toBe('not compliant');
    const charts = await page.$$eval('svg.chart', (svgs) =>
      svgs.map((s) => ({ points: s.querySelectorAll('circle').length, width: s.getBoundingClientRect().width })),
    );
    expect(charts).toEqual([
      { points: passed.length, width: expect.any(Number) },
      { points: times.length, width: expect.any(Number) },
    ]);
    expect(charts.every((c) => c.width > 300)).toBe(true);
    const backupRows = await page.$$eval('section h3', (hs) => {
      const h = hs.find((x) => x.textContent === 'Backups')!;
      return h.nextElementSibling!.querySelectorAll('tbody tr').length;
    });
    expect(backupRows).toBe(times.length);
    const png = path.join(tempDir('report-shot-'), 'report.png');
    await page.screenshot({ path: png as `${string}.png`, fullPage: true });
    expect(statSync(png).size).toBeGreaterThan(20_000);
    // Print to PDF works (what an auditor's browser does with it).
    const pdf = await page.pdf({ format: 'A4' });
    expect(Buffer.from(pdf).subarray(0, 5).toString()).toBe('%PDF-');
  } finally {
    await browser.close();
  }

  // The CLI's `report` takes the same options.
  const cli2 = await runCli(['report', ...cliArgs(inputs)], s3.env);
  expect(cli2.exitCode).toBe(0);
  const out = JSON.parse(cli2.stdout) as Record<string, string>;
  expect(out.compliant).toBe('false');
  expect((JSON.parse(readFileSync(out['json-path']!, 'utf8')) as ReportJson).databases[0]!.totals.backups).toBe(
    times.length,
  );
});

test('bad inputs name the input before any work', async () => {
  const base = { 's3-bucket': 'bucket-x', 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true', databases: 'app' };
  const cases: [Record<string, string>, RegExp][] = [
    [{ expect: 'keep-daily 30' }, /Input `expect`: "keep-daily 30" is not `name: value`/],
    [{ expect: 'keep-weekdays: 3' }, /Input `expect`: `keep-weekdays` is not a retention rule/],
    [{ expect: 'keep-daily: lots' }, /Input `expect`: rule `keep-daily`: "lots" is not a whole number/],
    [{ expect: 'keep-within: 30d' }, /Input `expect`: `keep-within` cannot be checked/],
    [{ since: 'forever' }, /Input `since`: "forever" is not a duration/],
    [{ 'rto-target': '1 hour' }, /Input `rto-target`/],
    [{ databases: '' }, /Input `databases`: is empty/],
  ];
  for (const [extra, message] of cases) {
    const r = await runBundle('backup-report', { ...base, ...extra }, s3.env);
    expect(r.errors.join('\n')).toMatch(message);
  }
});
