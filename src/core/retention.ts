import { UserError } from '../lib/errors.js';
import { subtractCalendarDuration, type CalendarDuration } from '../lib/duration.js';

/**
 * The retention planner: restic's `forget` (0.16+) semantics, exactly, plus safety keeps. Pure: no I/O, no clock
 * except the `now` it is given. Shared by S3 backups, Neon snapshot branches and the CLI's plan-retention.
 */
export interface RetentionPolicy {
  last: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
  within?: CalendarDuration;
  /** The text the user gave for keep-within, for reasons. */
  withinText?: string;
}

export interface PlanInput<T> {
  id: string;
  time: Date;
  item: T;
  /** Reasons this item must be kept whatever the policy (newest complete, newest verified). */
  protect?: string[];
}

export interface PlannedKeep<T> extends PlanInput<T> {
  reasons: string[];
}

export interface RetentionPlan<T> {
  keep: PlannedKeep<T>[];
  remove: PlanInput<T>[];
}

const RULES = [
  { key: 'last', label: 'last' },
  { key: 'hourly', label: 'hourly' },
  { key: 'daily', label: 'daily' },
  { key: 'weekly', label: 'weekly' },
  { key: 'monthly', label: 'monthly' },
  { key: 'yearly', label: 'yearly' },
] as const;

export function policyIsEmpty(p: RetentionPolicy): boolean {
  return RULES.every((r) => p[r.key] === 0) && !p.within;
}

/** Calendar fields of an instant in a time zone; UTC takes the fast path. */
export interface CalendarParts {
  year: number;
  month: number;
  day: number;
  hour: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock fields of an instant in a time zone (one cached formatter per zone). */
function wallClock(timeZone: string, t: number): CalendarParts & { minute: number; second: number } {
  let fmt = formatters.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, fmt);
  }
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(new Date(t))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { year: p.year!, month: p.month!, day: p.day!, hour: p.hour! % 24, minute: p.minute!, second: p.second! };
}

export function calendarIn(timeZone: string): (t: Date) => CalendarParts {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') {
    return (t) => ({
      year: t.getUTCFullYear(),
      month: t.getUTCMonth() + 1,
      day: t.getUTCDate(),
      hour: t.getUTCHours(),
    });
  }
  return (t) => wallClock(timeZone, t.getTime());
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** ISO 8601 week-numbering year and week of a calendar date (as Go's time.ISOWeek). */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const d = new Date(Date.UTC(year, month - 1, day));
  const weekday = d.getUTCDay() || 7; // Monday 1 .. Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const isoYear = d.getUTCFullYear();
  const week = Math.ceil(((d.getTime() - Date.UTC(isoYear, 0, 1)) / 86400000 + 1) / 7);
  return { year: isoYear, week };
}

/** Offset (ms) of a time zone from UTC at an instant. */
function zoneOffsetMs(timeZone: string, t: number): number {
  const w = wallClock(timeZone, t);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(t / 1000) * 1000;
}

/**
 * restic's `latest.AddDate(-y, -m, -d).Add(-h hours)`: the calendar part in the zone's wall time (so a day across
 * a DST change is 23 or 25 hours), the hours as absolute time.
 */
export function withinLimit(latest: Date, d: CalendarDuration, timeZone: string): number {
  const calendar = { years: d.years, months: d.months, days: d.days, hours: 0 };
  let shifted: number;
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') shifted = subtractCalendarDuration(latest.getTime(), calendar);
  else {
    const offset = zoneOffsetMs(timeZone, latest.getTime());
    const wall = subtractCalendarDuration(latest.getTime() + offset, calendar);
    // Back from wall time to an instant, with the offset in force at the result (twice, to settle across DST).
    let guess = wall - zoneOffsetMs(timeZone, wall - offset);
    guess = wall - zoneOffsetMs(timeZone, guess);
    shifted = guess;
  }
  return shifted - d.hours * 3600_000;
}

export function planRetention<T>(
  input: PlanInput<T>[],
  policy: RetentionPolicy,
  options: { timeZone?: string; now?: Date } = {},
): RetentionPlan<T> {
  if (policyIsEmpty(policy)) {
    throw new UserError(
      'No keep rule is set: refusing to plan, since an empty policy would delete every backup. Set at least one of `keep-last`, `keep-hourly`, `keep-daily`, `keep-weekly`, `keep-monthly`, `keep-yearly`, `keep-within`.',
    );
  }
  const timeZone = options.timeZone ?? 'UTC';
  const now = (options.now ?? new Date()).getTime();
  const cal = calendarIn(timeZone);
  // Newest first; a stable sort keeps the input order of equal times, as restic's sort.Stable does.
  const list = input
    .map((x, i) => ({ x, i }))
    .sort((a, b) => b.x.time.getTime() - a.x.time.getTime() || a.i - b.i)
    .map((e) => e.x);
  const keep: PlannedKeep<T>[] = [];
  const remove: PlanInput<T>[] = [];
  if (list.length === 0) return { keep, remove };

  // The newest backup that is not in the future.
  let latest = 0;
  for (const s of list) if (s.time.getTime() > latest && s.time.getTime() < now) latest = s.time.getTime();
  const withinFrom = policy.within ? withinLimit(new Date(latest), policy.within, timeZone) : undefined;

  const buckets = RULES.map((r) => ({
    ...r,
    count: policy[r.key],
    total: policy[r.key],
    last: undefined as number | string | undefined,
  }));
  list.forEach((cur, nr) => {
    const reasons: string[] = [];
    if (withinFrom !== undefined && cur.time.getTime() > withinFrom)
      reasons.push(`within ${policy.withinText ?? 'keep-within'}`);
    const c = cal(cur.time);
    for (const b of buckets) {
      if (!(b.count > 0 || b.count === -1)) continue;
      const val = bucketValue(b.key, c, nr);
      // Like restic, also keep the oldest backup while the rule has counts left: the longest history.
      if (val !== b.last || nr === list.length - 1) {
        b.last = val;
        if (b.count > 0) b.count--;
        reasons.push(b.total === -1 ? `${b.label} (all)` : `${b.label} ${b.total - b.count}/${b.total}`);
      }
    }
    for (const p of cur.protect ?? []) reasons.push(p);
    if (reasons.length) keep.push({ ...cur, reasons });
    else remove.push(cur);
  });
  return { keep, remove };
}

function bucketValue(rule: (typeof RULES)[number]['key'], c: CalendarParts, nr: number): number {
  switch (rule) {
    case 'last':
      return -1 - nr; // unique per backup (restic: the index)
    case 'hourly':
      return ((c.year * 100 + c.month) * 100 + c.day) * 100 + c.hour;
    case 'daily':
      return (c.year * 100 + c.month) * 100 + c.day;
    case 'weekly': {
      const w = isoWeek(c.year, c.month, c.day);
      return w.year * 100 + w.week;
    }
    case 'monthly':
      return c.year * 100 + c.month;
    case 'yearly':
      return c.year;
  }
}
