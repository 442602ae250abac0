import {
  median,
  recentSlots,
  retentionCompliance,
  series,
  slopePer30Days,
  streamReport,
  verificationMethod,
  type StreamFacts,
} from '../../src/core/evidence.js';
import { reportHtml, reportMarkdown } from '../../src/core/report-render.js';
import type { EvidenceReport } from '../../src/core/report.js';
import type { RetentionPolicy } from '../../src/core/retention.js';

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({
  last: 0,
  hourly: 0,
  daily: 0,
  weekly: 0,
  monthly: 0,
  yearly: 0,
  ...p,
});
const at = (iso: string) => new Date(iso);
const backups = (...isos: string[]) => isos.map((t, i) => ({ backupId: `b${i}`, time: at(t) }));

describe('recentSlots', () => {
  test.each([
    ['daily', '2026-03-02T05:00:00Z', 3, 'UTC', ['2026-03-02', '2026-03-01', '2026-02-28']],
    ['monthly', '2026-02-10T00:00:00Z', 3, 'UTC', ['2026-02', '2026-01', '2025-12']],
    ['weekly', '2026-01-05T00:00:00Z', 3, 'UTC', ['2026-W02', '2026-W01', '2025-W52']],
    ['yearly', '2026-06-01T00:00:00Z', 2, 'UTC', ['2026', '2025']],
    ['hourly', '2026-03-01T01:30:00Z', 3, 'UTC', ['2026-03-01T01', '2026-03-01T00', '2026-02-28T23']],
    // 23:30 UTC is already the next day in Berlin.
    ['daily', '2026-03-01T23:30:00Z', 2, 'Europe/Berlin', ['2026-03-02', '2026-03-01']],
  ] as const)('%s at %s, %i in %s', (rule, now, count, tz, expected) => {
    expect(recentSlots(rule, at(now), count, tz)).toEqual(expected);
  });
});

describe('retentionCompliance', () => {
  test('monthly: a month without a backup is named, the open month is pending, not missing', () => {
    const r = retentionCompliance(
      backups('2026-01-15T02:00:00Z', '2026-02-01T02:00:00Z', '2026-04-30T02:00:00Z'),
      policy({ monthly: 5 }),
      at('2026-05-10T00:00:00Z'),
      'UTC',
    );
    expect(r.rules[0]!.slots.map((s) => `${s.slot}:${s.status}`)).toEqual([
      '2026-05:pending',
      '2026-04:filled',
      '2026-03:missing',
      '2026-02:filled',
      '2026-01:filled',
    ]);
    expect(r.missing).toEqual(['monthly 2026-03: no backup']);
    expect(r.compliant).toBe(false);
    expect(r.rules[0]).toMatchObject({ expected: 5, filled: 3, missing: 1 });
  });

  test('daily and last together; the newest backup of a day fills its slot; future backups do not count', () => {
    const r = retentionCompliance(
      backups(
        '2026-03-01T01:00:00Z',
        '2026-03-01T13:00:00Z',
        '2026-03-03T02:00:00Z',
        '2026-03-04T02:00:00Z',
        '2026-03-09T00:00:00Z',
      ),
      policy({ daily: 4, last: 5 }),
      at('2026-03-04T12:00:00Z'),
      'UTC',
    );
    expect(r.missing).toEqual(['last: 4 complete backup(s), 5 expected', 'daily 2026-03-02: no backup']);
    const daily = r.rules.find((x) => x.rule === 'daily')!;
    expect(daily.slots.find((s) => s.slot === '2026-03-01')!.backupId).toBe('b1');
    expect(daily.filled).toBe(3);
  });

  test('every slot filled is compliant', () => {
    const r = retentionCompliance(
      backups('2026-03-02T02:00:00Z', '2026-03-03T02:00:00Z', '2026-03-04T02:00:00Z'),
      policy({ daily: 3 }),
      at('2026-03-04T12:00:00Z'),
      'UTC',
    );
    expect(r).toMatchObject({ compliant: true, missing: [] });
  });
});

describe('series', () => {
  test.each([
    [[], null],
    [[5], 5],
    [[1, 9, 3], 3],
    [[4, 1, 3, 2], 2.5],
  ])('median of %j is %p', (values, expected) => expect(median(values)).toBe(expected));

  test('slope per 30 days of a straight line', () => {
    const day = 86400_000;
    expect(
      slopePer30Days([
        { t: 0, v: 10 },
        { t: 30 * day, v: 40 },
      ]),
    ).toBeCloseTo(30);
    expect(slopePer30Days([{ t: 0, v: 10 }])).toBeNull();
  });

  test('worst, trend and target', () => {
    const day = 86400_000;
    const s = series(
      [10, 20, 30, 40].map((v, i) => ({ t: i * 10 * day, v })),
      35,
    );
    expect(s).toMatchObject({ count: 4, worst: 40, best: 10, median: 25, trend: 'worsening', ok: false, target: 35 });
    expect(
      series(
        [
          { t: 0, v: 10 },
          { t: day, v: 10 },
        ],
        60,
      ),
    ).toMatchObject({ trend: 'steady', ok: true });
    expect(series([], 60)).toMatchObject({ worst: null, ok: false, trend: 'n/a' });
    expect(series([{ t: 0, v: 10 }])).toMatchObject({ ok: null });
  });
});

describe('streamReport', () => {
  const facts: StreamFacts = {
    database: 'app',
    complete: backups('2026-01-10T02:00:00Z', '2026-02-20T02:00:00Z', '2026-03-01T02:00:00Z'),
    backups: [],
    verifications: [
      {
        backupId: 'b1',
        verifiedAt: at('2026-02-20T05:00:00Z'),
        status: 'passed',
        mode: 'verify',
        rtoSeconds: 100,
        rpoSeconds: 3 * 3600,
        failures: [],
        runUrl: null,
      },
      {
        backupId: 'b2',
        verifiedAt: at('2026-03-01T05:00:00Z'),
        status: 'failed',
        mode: 'verify',
        rtoSeconds: 50,
        rpoSeconds: 3 * 3600,
        failures: ['public.visits: 10 rows, 12 expected'],
        runUrl: null,
      },
    ],
    incomplete: [
      { backupId: 'x1', time: at('2026-02-25T02:00:00Z') },
      { backupId: 'x2', time: at('2026-03-02T11:00:00Z') },
    ],
  };
  facts.backups = facts.complete.map((b) => ({
    ...b,
    kind: 'scheduled',
    bytes: 1000,
    sha256: 'ab',
    encryption: 'none',
    artifacts: [],
    github: null,
  }));
  const period = { from: at('2026-02-01T00:00:00Z'), now: at('2026-03-02T12:00:00Z'), timeZone: 'UTC' };

  test('failures, in-progress backups, freshness and objectives', () => {
    const r = streamReport(
      facts,
      { policy: policy({ monthly: 2 }), maxAgeSeconds: 26 * 3600, text: '' },
      { rtoSeconds: 60, rpoSeconds: 24 * 3600 },
      period,
    );
    expect(r.backups.map((b) => [b.backupId, b.verified])).toEqual([
      ['b1', 'passed'],
      ['b2', 'failed'],
    ]);
    expect(r.failures.map((f) => `${f.what} ${f.backupId}`)).toEqual(['backup x1', 'verification b2']);
    expect(r.failures[1]!.detail).toBe('public.visits: 10 rows, 12 expected');
    expect(r.inProgress).toEqual(['x2']);
    // b2's verification failed, so the newest verified is b1, 10 days and 10 hours old.
    expect(r.freshness).toMatchObject({ newestVerified: { backupId: 'b1' }, ok: false });
    expect(r.freshness.ageSeconds).toBe(10 * 86400 + 10 * 3600);
    // Only passed verifications measure RTO; the failed one (50 s) does not count.
    expect(r.objectives.rto).toMatchObject({ count: 1, worst: 100, ok: false });
    // Gaps inside the period: Feb 20 -> Mar 1 (9 days), Mar 1 -> now (1 day 10 h).
    expect(r.objectives.backupGap.worst).toBe(9 * 86400);
    expect(r.problems).toEqual([
      'newest verified backup b1 is older than max-age',
      'RTO target missed',
      'a gap between backups exceeds the RPO target',
    ]);
    expect(r.compliant).toBe(false);
    expect(r.totals).toEqual({ backups: 2, bytes: 2000, verificationsPassed: 1, verificationsFailed: 1 });
  });

  test('met targets and a filled policy are compliant', () => {
    const r = streamReport(facts, { policy: policy({ monthly: 2 }), text: '' }, { rtoSeconds: 600 }, period);
    expect(r.retention.compliant).toBe(true);
    expect(r.compliant).toBe(true);
  });
});

describe('verification method', () => {
  test.each([
    ['verify', 'S3 restore'],
    ['neon-pitr', 'Neon point in time'],
    ['restore', 'restore'],
  ])('%s is shown as %s', (mode, label) => expect(verificationMethod(mode)).toBe(label));

  test('the Markdown and HTML tables say how each verification proved its backup', () => {
    const facts: StreamFacts = {
      database: 'app',
      complete: backups('2026-03-01T02:00:00Z'),
      backups: [],
      incomplete: [],
      verifications: (['verify', 'neon-pitr'] as const).map((mode, i) => ({
        backupId: 'b0',
        verifiedAt: at(`2026-03-01T0${5 + i}:00:00Z`),
        status: 'passed' as const,
        mode,
        rtoSeconds: 60,
        rpoSeconds: 3600,
        failures: [],
        runUrl: null,
      })),
    };
    const period = { from: at('2026-02-01T00:00:00Z'), now: at('2026-03-02T00:00:00Z'), timeZone: 'UTC' };
    const stream = streamReport(facts, undefined, {}, period);
    const report: EvidenceReport = {
      formatVersion: 1,
      type: 'backup-report',
      generatedAt: '2026-03-02T00:00:00Z',
      period: { from: '2026-02-01T00:00:00Z', to: '2026-03-02T00:00:00Z', since: '30d' },
      store: 's3://b/p/',
      timeZone: 'UTC',
      expect: null,
      targets: { rtoSeconds: null, rpoSeconds: null },
      compliant: stream.compliant,
      databases: [stream],
      github: null,
      tool: { name: 'postgres-backup-actions', version: '0' },
    };
    const markdown = reportMarkdown(report);
    expect(markdown).toContain('| Time | Backup | Method | Status | RTO | RPO | Run |');
    expect(markdown).toMatch(/2026-03-01T05:00:00.000Z \| `b0` \| S3 restore \| ✅ passed/);
    expect(markdown).toMatch(/2026-03-01T06:00:00.000Z \| `b0` \| Neon point in time \| ✅ passed/);
    const html = reportHtml(report);
    expect(html).toContain('<th>Method</th>');
    expect(html).toContain('<td>Neon point in time</td>');
    expect(html).toContain('<td>S3 restore</td>');
  });
});
