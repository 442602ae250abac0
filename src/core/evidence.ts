import { calendarIn, isoWeek, type RetentionPolicy } from './retention.js';

/**
 * The figures of the evidence report, pure: no I/O, no clock except the `now` given. What a backup stream did over
 * a period (backups, verifications, failures), whether its declared retention is met slot by slot, and how the
 * measured RTO and RPO compare with their targets.
 */

export interface BackupFact {
  backupId: string;
  time: Date;
  completedAt?: string;
  kind: string;
  bytes: number;
  sha256: string;
  encryption: string;
  artifacts: { name: string; key: string; bytes: number; sha256: string }[];
  github: { repository: string; runUrl: string; sha: string } | null;
  /** S3 Object Lock the backup was written with (its manifest's `objectLock`): immutable until `retainUntil`. */
  objectLock?: { mode: string; retainUntil: string };
}

export interface VerificationFact {
  backupId: string;
  verifiedAt: Date;
  status: 'passed' | 'failed';
  mode: string;
  rtoSeconds: number;
  rpoSeconds: number;
  failures: string[];
  runUrl: string | null;
}

/** How a verification proved its backup, as the report names it: a restore from S3 or a Neon point-in-time branch. */
export function verificationMethod(mode: string): string {
  if (mode === 'neon-pitr') return 'Neon point in time';
  if (mode === 'verify') return 'S3 restore';
  return mode;
}

/** A backup prefix without a manifest: a backup that failed or was interrupted (or is still running). */
export interface IncompleteFact {
  backupId: string;
  time: Date;
}

export interface StreamFacts {
  database: string;
  /** Every complete backup in the store, oldest first (retention slots look beyond the period). */
  complete: { backupId: string; time: Date }[];
  /** Complete backups in the period, with their manifests' details. */
  backups: BackupFact[];
  verifications: VerificationFact[];
  incomplete: IncompleteFact[];
}

export interface Expectation {
  policy: RetentionPolicy;
  /** Newest verified backup must be at most this old. */
  maxAgeSeconds?: number;
  text: string;
}

export interface Targets {
  rtoSeconds?: number;
  rpoSeconds?: number;
}

export type SlotRule = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
export const SLOT_RULES: SlotRule[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

export interface Slot {
  slot: string;
  status: 'filled' | 'missing' | 'pending';
  backupId?: string;
}

export interface RuleCompliance {
  rule: SlotRule | 'last';
  expected: number;
  filled: number;
  missing: number;
  slots: Slot[];
}

export interface Series {
  count: number;
  worst: number | null;
  median: number | null;
  best: number | null;
  /** Least-squares slope of the values over time, per 30 days (positive: growing). */
  slopePer30Days: number | null;
  trend: 'improving' | 'worsening' | 'steady' | 'n/a';
  target: number | null;
  /** Whether the worst value meets the target; null without a target. */
  ok: boolean | null;
}

export interface StreamReport {
  database: string;
  compliant: boolean;
  problems: string[];
  backups: (BackupFact & { verified: 'passed' | 'failed' | null })[];
  verifications: VerificationFact[];
  failures: { time: string; what: 'backup' | 'verification'; backupId: string; detail: string }[];
  inProgress: string[];
  retention: { compliant: boolean; rules: RuleCompliance[]; missing: string[] };
  freshness: {
    newestVerified: { backupId: string; time: string; verifiedAt: string } | null;
    ageSeconds: number | null;
    maxAgeSeconds: number | null;
    ok: boolean | null;
  };
  objectives: { rto: Series; rpo: Series; backupGap: Series };
  totals: { backups: number; bytes: number; verificationsPassed: number; verificationsFailed: number };
}

const DAY = 86400_000;
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The label of the period a calendar date falls in, per rule: `2026-03` for monthly, `2026-W09` for weekly... */
export function slotLabel(rule: SlotRule, c: { year: number; month: number; day: number; hour: number }): string {
  switch (rule) {
    case 'hourly':
      return `${c.year}-${pad(c.month)}-${pad(c.day)}T${pad(c.hour)}`;
    case 'daily':
      return `${c.year}-${pad(c.month)}-${pad(c.day)}`;
    case 'weekly': {
      const w = isoWeek(c.year, c.month, c.day);
      return `${w.year}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${c.year}-${pad(c.month)}`;
    case 'yearly':
      return String(c.year);
  }
}

/** The labels of the `count` periods that end with the current one, newest first. */
export function recentSlots(rule: SlotRule, now: Date, count: number, timeZone: string): string[] {
  const c = calendarIn(timeZone)(now);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let d: Date;
    if (rule === 'hourly') d = new Date(Date.UTC(c.year, c.month - 1, c.day, c.hour - i));
    else if (rule === 'daily') d = new Date(Date.UTC(c.year, c.month - 1, c.day - i));
    else if (rule === 'weekly') d = new Date(Date.UTC(c.year, c.month - 1, c.day - 7 * i));
    else if (rule === 'monthly') d = new Date(Date.UTC(c.year, c.month - 1 - i, 1));
    else d = new Date(Date.UTC(c.year - i, 0, 1));
    out.push(
      slotLabel(rule, {
        year: d.getUTCFullYear(),
        month: d.getUTCMonth() + 1,
        day: d.getUTCDate(),
        hour: d.getUTCHours(),
      }),
    );
  }
  return out;
}

/**
 * Retention compliance: for each keep rule with a count, the periods that end with the current one must each hold
 * a complete backup. The current period, still open, is `pending` when empty, never `missing`. `-1` (all) cannot
 * be checked slot by slot and is reported as met by the backups present.
 */
export function retentionCompliance(
  complete: { backupId: string; time: Date }[],
  policy: RetentionPolicy,
  now: Date,
  timeZone: string,
): { compliant: boolean; rules: RuleCompliance[]; missing: string[] } {
  const cal = calendarIn(timeZone);
  const rules: RuleCompliance[] = [];
  const missing: string[] = [];
  const past = complete.filter((b) => b.time.getTime() <= now.getTime());
  if (policy.last > 0) {
    const filled = Math.min(policy.last, past.length);
    rules.push({ rule: 'last', expected: policy.last, filled, missing: policy.last - filled, slots: [] });
    if (filled < policy.last) missing.push(`last: ${past.length} complete backup(s), ${policy.last} expected`);
  }
  for (const rule of SLOT_RULES) {
    const count = policy[rule];
    if (count <= 0) continue;
    const newestIn = new Map<string, string>();
    for (const b of past) newestIn.set(slotLabel(rule, cal(b.time)), b.backupId); // oldest first: newest wins
    const labels = recentSlots(rule, now, count, timeZone);
    const slots: Slot[] = labels.map((slot, i) => {
      const backupId = newestIn.get(slot);
      if (backupId) return { slot, status: 'filled', backupId };
      return { slot, status: i === 0 ? 'pending' : 'missing' };
    });
    for (const s of slots) if (s.status === 'missing') missing.push(`${rule} ${s.slot}: no backup`);
    rules.push({
      rule,
      expected: count,
      filled: slots.filter((s) => s.status === 'filled').length,
      missing: slots.filter((s) => s.status === 'missing').length,
      slots,
    });
  }
  return { compliant: missing.length === 0, rules, missing };
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Least-squares slope of value over time, in value units per 30 days; null with fewer than two distinct times. */
export function slopePer30Days(points: { t: number; v: number }[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? null : (num / den) * 30 * DAY;
}

/** Worst (largest), median, best, trend and target check of a series of durations (lower is better). */
export function series(points: { t: number; v: number }[], target?: number): Series {
  const values = points.map((p) => p.v);
  const worst = values.length ? Math.max(...values) : null;
  const slope = slopePer30Days(points);
  const med = median(values);
  // Steady unless the fitted change over 30 days is more than a tenth of the median.
  const trend =
    slope === null || med === null
      ? 'n/a'
      : Math.abs(slope) <= 0.1 * Math.max(med, 1e-9)
        ? 'steady'
        : slope > 0
          ? 'worsening'
          : 'improving';
  return {
    count: values.length,
    worst,
    median: med,
    best: values.length ? Math.min(...values) : null,
    slopePer30Days: slope,
    trend,
    target: target ?? null,
    ok: target === undefined ? null : worst !== null && worst <= target,
  };
}

/** How long the incomplete prefix may be a backup still running before it counts as a failure. */
export const RUNNING_GRACE_SECONDS = 24 * 3600;

export function streamReport(
  facts: StreamFacts,
  expect: Expectation | undefined,
  targets: Targets,
  period: { from: Date; now: Date; timeZone: string },
): StreamReport {
  const { from, now, timeZone } = period;
  const inPeriod = (t: Date) => t.getTime() >= from.getTime() && t.getTime() <= now.getTime();
  const verifications = facts.verifications
    .filter((v) => inPeriod(v.verifiedAt))
    .sort((a, b) => +a.verifiedAt - +b.verifiedAt);
  const lastStatus = new Map<string, 'passed' | 'failed'>();
  for (const v of verifications) lastStatus.set(v.backupId, v.status);
  const backups = facts.backups
    .filter((b) => inPeriod(b.time))
    .sort((a, b) => +a.time - +b.time)
    .map((b) => ({ ...b, verified: lastStatus.get(b.backupId) ?? null }));

  const failures: StreamReport['failures'] = [];
  const inProgress: string[] = [];
  for (const i of facts.incomplete.filter((x) => inPeriod(x.time))) {
    // By its start time: a run that began more than a day ago and has no manifest did not finish.
    if (now.getTime() - i.time.getTime() < RUNNING_GRACE_SECONDS * 1000) inProgress.push(i.backupId);
    else
      failures.push({
        time: i.time.toISOString(),
        what: 'backup',
        backupId: i.backupId,
        detail: 'no manifest: the backup failed or was interrupted',
      });
  }
  for (const v of verifications.filter((x) => x.status === 'failed')) {
    failures.push({
      time: v.verifiedAt.toISOString(),
      what: 'verification',
      backupId: v.backupId,
      detail: v.failures.length ? v.failures.join('; ') : 'verification failed',
    });
  }
  failures.sort((a, b) => a.time.localeCompare(b.time));

  const problems: string[] = [];
  const retention = expect
    ? retentionCompliance(facts.complete, expect.policy, now, timeZone)
    : { compliant: true, rules: [], missing: [] };
  problems.push(...retention.missing);

  // Newest verified: the newest backup whose newest verification (of any time) passed.
  const everLast = new Map<string, VerificationFact>();
  for (const v of [...facts.verifications].sort((a, b) => +a.verifiedAt - +b.verifiedAt)) everLast.set(v.backupId, v);
  const times = new Map(facts.complete.map((b) => [b.backupId, b.time]));
  let newest: { backupId: string; time: Date; verifiedAt: Date } | undefined;
  for (const [id, v] of everLast) {
    const t = times.get(id);
    if (v.status === 'passed' && t && (!newest || t > newest.time))
      newest = { backupId: id, time: t, verifiedAt: v.verifiedAt };
  }
  const ageSeconds = newest ? Math.max(0, (now.getTime() - newest.time.getTime()) / 1000) : null;
  const maxAge = expect?.maxAgeSeconds;
  const freshOk = maxAge === undefined ? null : ageSeconds !== null && ageSeconds <= maxAge;
  if (freshOk === false)
    problems.push(
      newest
        ? `newest verified backup ${newest.backupId} is older than max-age`
        : 'no verified backup at all (max-age is declared)',
    );

  const passed = verifications.filter((v) => v.status === 'passed');
  const rto = series(
    passed.map((v) => ({ t: v.verifiedAt.getTime(), v: v.rtoSeconds })),
    targets.rtoSeconds,
  );
  const rpo = series(
    passed.map((v) => ({ t: v.verifiedAt.getTime(), v: v.rpoSeconds })),
    targets.rpoSeconds,
  );
  // The longest stretch without a backup is the data a failure at its end would have lost: an RPO too.
  const inWindow = facts.complete.filter((b) => inPeriod(b.time));
  const gaps: { t: number; v: number }[] = [];
  for (let i = 1; i < inWindow.length; i++)
    gaps.push({
      t: inWindow[i]!.time.getTime(),
      v: (inWindow[i]!.time.getTime() - inWindow[i - 1]!.time.getTime()) / 1000,
    });
  if (inWindow.length) gaps.push({ t: now.getTime(), v: (now.getTime() - inWindow.at(-1)!.time.getTime()) / 1000 });
  const backupGap = series(gaps, targets.rpoSeconds);
  if (targets.rtoSeconds !== undefined && rto.ok === false)
    problems.push(rto.worst === null ? 'no passed verification in the period to measure RTO' : 'RTO target missed');
  if (targets.rpoSeconds !== undefined && rpo.ok === false)
    problems.push(rpo.worst === null ? 'no passed verification in the period to measure RPO' : 'RPO target missed');
  if (targets.rpoSeconds !== undefined && backupGap.ok === false)
    problems.push(
      backupGap.worst === null ? 'no backup in the period' : 'a gap between backups exceeds the RPO target',
    );

  return {
    database: facts.database,
    compliant: problems.length === 0,
    problems,
    backups,
    verifications,
    failures,
    inProgress,
    retention,
    freshness: {
      newestVerified: newest
        ? { backupId: newest.backupId, time: newest.time.toISOString(), verifiedAt: newest.verifiedAt.toISOString() }
        : null,
      ageSeconds,
      maxAgeSeconds: maxAge ?? null,
      ok: freshOk,
    },
    objectives: { rto, rpo, backupGap },
    totals: {
      backups: backups.length,
      bytes: backups.reduce((s, b) => s + b.bytes, 0),
      verificationsPassed: passed.length,
      verificationsFailed: verifications.length - passed.length,
    },
  };
}
