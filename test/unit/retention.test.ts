import { parseCalendarDuration } from '../../src/lib/duration.js';
import { isoWeek, planRetention, type RetentionPolicy } from '../../src/core/retention.js';

const NONE: RetentionPolicy = { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 };
type Counts = Partial<Omit<RetentionPolicy, 'within' | 'withinText'>> & { within?: string };
const policy = (p: Counts = {}): RetentionPolicy => {
  const { within, ...rest } = p;
  return {
    ...NONE,
    ...rest,
    ...(within ? { within: parseCalendarDuration('keep-within', within), withinText: within } : {}),
  };
};
const NOW = new Date('2030-01-01T00:00:00Z');

function plan(times: Record<string, string>, p: RetentionPolicy, timeZone = 'UTC', now = NOW) {
  const input = Object.entries(times).map(([id, t]) => ({ id, time: new Date(t), item: id }));
  const r = planRetention(input, p, { timeZone, now });
  return {
    keep: r.keep.map((k) => k.id),
    remove: r.remove.map((k) => k.id).sort(),
    reasons: Object.fromEntries(r.keep.map((k) => [k.id, k.reasons])),
  };
}

// a..i, newest last here; the planner orders newest first.
const T = {
  a: '2026-01-01T10:00:00Z', // Thu, ISO 2026-W01
  b: '2026-01-01T20:00:00Z', // same day as a
  c: '2026-01-02T09:00:00Z', // Fri, W01
  d: '2026-01-05T09:00:00Z', // Mon, W02
  e: '2026-01-05T09:30:00Z', // same day and hour as d
  f: '2026-01-11T23:00:00Z', // Sun, W02
  g: '2026-02-01T08:00:00Z', // Sun, W05
  h: '2026-02-14T08:00:00Z', // Sat, W07
  i: '2026-03-01T08:00:00Z', // Sun, W09
};

describe('each rule alone (restic forget semantics)', () => {
  test.each<[string, Counts, string[]]>([
    ['keep-last 3', { last: 3 }, ['i', 'h', 'g']],
    ['keep-last -1 keeps everything', { last: -1 }, ['i', 'h', 'g', 'f', 'e', 'd', 'c', 'b', 'a']],
    ['keep-hourly 2', { hourly: 2 }, ['i', 'h']],
    ['keep-hourly 20: e and d share an hour', { hourly: 20 }, ['i', 'h', 'g', 'f', 'e', 'c', 'b', 'a']],
    ['keep-daily 3', { daily: 3 }, ['i', 'h', 'g']],
    [
      'keep-daily 20: newest per day, and the oldest while counts are left',
      { daily: 20 },
      ['i', 'h', 'g', 'f', 'e', 'c', 'b', 'a'],
    ],
    ['keep-weekly 2', { weekly: 2 }, ['i', 'h']],
    ['keep-weekly 10: ISO weeks, oldest kept', { weekly: 10 }, ['i', 'h', 'g', 'f', 'c', 'a']],
    ['keep-monthly 2', { monthly: 2 }, ['i', 'h']],
    ['keep-monthly -1: every month, and the oldest', { monthly: -1 }, ['i', 'h', 'f', 'a']],
    ['keep-yearly 1: the oldest is not kept once counts are used', { yearly: 1 }, ['i']],
    ['keep-yearly 5', { yearly: 5 }, ['i', 'a']],
    [
      'keep-within 1mo: strictly after newest minus one month (g is exactly on the limit)',
      { within: '1mo' },
      ['i', 'h'],
    ],
    ['keep-within 1mo1d', { within: '1mo1d' }, ['i', 'h', 'g']],
    ['keep-within 30d', { within: '30d' }, ['i', 'h', 'g']],
    ['keep-within 7d', { within: '7d' }, ['i']],
    ['keep-within 1y keeps all', { within: '1y' }, ['i', 'h', 'g', 'f', 'e', 'd', 'c', 'b', 'a']],
    [
      'keep-within 1mo26d23h: hours count too (d is exactly on the limit)',
      { within: '1mo26d23h' },
      ['i', 'h', 'g', 'f', 'e'],
    ],
  ])('%s', (_name, p, keep) => {
    const r = plan(T, policy(p));
    expect(r.keep).toEqual(keep);
    expect([...r.keep, ...r.remove].sort()).toEqual(Object.keys(T).sort());
  });
});

describe('rules combined', () => {
  test('daily 2, weekly 2, monthly 3 overlap, with counters in the reasons', () => {
    const r = plan(T, policy({ daily: 2, weekly: 2, monthly: 3 }));
    expect(r.keep).toEqual(['i', 'h', 'f']);
    expect(r.reasons).toEqual({
      i: ['daily 1/2', 'weekly 1/2', 'monthly 1/3'],
      h: ['daily 2/2', 'weekly 2/2', 'monthly 2/3'],
      f: ['monthly 3/3'],
    });
  });
  test('last 1 and keep-within 1mo1d', () => {
    const r = plan(T, policy({ last: 1, within: '1mo1d' }));
    expect(r.keep).toEqual(['i', 'h', 'g']);
    expect(r.reasons.i).toEqual(['within 1mo1d', 'last 1/1']);
  });
  test('-1 reasons', () => {
    expect(plan(T, policy({ yearly: -1 })).reasons).toEqual({ i: ['yearly (all)'], a: ['yearly (all)'] });
  });
});

describe('calendar edges', () => {
  const W = {
    mon53: '2020-12-28T12:00:00Z', // ISO 2020-W53
    thu53: '2020-12-31T12:00:00Z',
    fri53: '2021-01-01T12:00:00Z', // calendar 2021, ISO week 2020-W53
    sun53: '2021-01-03T12:00:00Z',
    mon01: '2021-01-04T12:00:00Z', // ISO 2021-W01
    sun01: '2021-01-10T12:00:00Z',
    mon02: '2021-01-11T12:00:00Z',
  };
  test('ISO week 53 spans the new year', () => {
    expect(plan(W, policy({ weekly: 3 })).keep).toEqual(['mon02', 'sun01', 'sun53']);
  });
  test('years are calendar years, not ISO years', () => {
    expect(plan(W, policy({ yearly: 2 })).keep).toEqual(['mon02', 'thu53']);
  });
  test.each([
    [2020, 12, 31, 2020, 53],
    [2021, 1, 3, 2020, 53],
    [2021, 1, 4, 2021, 1],
    [2026, 1, 1, 2026, 1],
    [2024, 12, 30, 2025, 1],
    [2027, 1, 1, 2026, 53],
    [2026, 11, 21, 2026, 47],
  ])('isoWeek(%d-%d-%d) = %d-W%d', (y, m, d, wy, w) => expect(isoWeek(y, m, d)).toEqual({ year: wy, week: w }));

  const DST = {
    late: '2026-10-24T21:30:00Z', // Berlin 23:30 CEST, 24 Oct
    midnight: '2026-10-24T22:30:00Z', // Berlin 00:30 CEST, 25 Oct (DST ends 25 Oct 03:00)
    noon: '2026-10-25T12:00:00Z', // Berlin 13:00 CET, 25 Oct
  };
  test('days are counted in the time zone given', () => {
    expect(plan(DST, policy({ daily: 2 }), 'UTC').keep).toEqual(['noon', 'midnight']);
    expect(plan(DST, policy({ daily: 2 }), 'Europe/Berlin').keep).toEqual(['noon', 'late']);
  });
  test('keep-within a day across the DST change is 25 hours of wall-clock time in that zone', () => {
    const X = { newest: '2026-10-25T12:00:00Z', edge: '2026-10-24T11:30:00Z' };
    expect(plan(X, policy({ within: '1d' }), 'UTC').keep).toEqual(['newest']);
    expect(plan(X, policy({ within: '1d' }), 'Europe/Berlin').keep).toEqual(['newest', 'edge']);
  });
  test('months ending on the 31st normalise like Go', () => {
    // newest 2026-03-31 minus 1 month = "2026-02-31" = 2026-03-03
    const X = { newest: '2026-03-31T00:00:00Z', in: '2026-03-03T00:00:01Z', out: '2026-03-03T00:00:00Z' };
    expect(plan(X, policy({ within: '1mo' })).keep).toEqual(['newest', 'in']);
  });
});

describe('ties, empties and the clock', () => {
  test('same-timestamp duplicates: input order decides, like a stable sort', () => {
    const r = plan(
      { first: '2026-05-01T00:00:00Z', second: '2026-05-01T00:00:00Z', older: '2026-04-01T00:00:00Z' },
      policy({ last: 1 }),
    );
    expect(r.keep).toEqual(['first']);
    const d = plan(
      { second: '2026-05-01T00:00:00Z', first: '2026-05-01T00:00:00Z', older: '2026-04-01T00:00:00Z' },
      policy({ daily: 1 }),
    );
    expect(d.keep).toEqual(['second']);
  });
  test('an empty input is an empty plan', () => {
    expect(planRetention([], policy({ daily: 7 }))).toEqual({ keep: [], remove: [] });
  });
  test('no keep rule at all is an error, never "delete everything"', () => {
    expect(() => planRetention([{ id: 'x', time: new Date(), item: 1 }], policy())).toThrow(/No keep rule is set/);
  });
  test('keep-within measures from the newest backup that is not in the future', () => {
    const X = {
      future: '2031-01-01T00:00:00Z',
      newest: '2029-12-31T00:00:00Z',
      weekAgo: '2029-12-24T00:00:00Z',
      old: '2029-01-01T00:00:00Z',
    };
    expect(plan(X, policy({ within: '10d' })).keep).toEqual(['future', 'newest', 'weekAgo']);
  });
  test('protected backups are kept with their reason even when the policy would remove them', () => {
    const input = Object.entries(T).map(([id, t]) => ({
      id,
      time: new Date(t),
      item: id,
      protect: id === 'c' ? ['newest verified backup'] : [],
    }));
    const r = planRetention(input, policy({ last: 1 }), { now: NOW });
    expect(r.keep.map((k) => [k.id, k.reasons])).toEqual([
      ['i', ['last 1/1']],
      ['c', ['newest verified backup']],
    ]);
  });
});

describe('properties on random timelines', () => {
  // A small deterministic PRNG, so that a failure can be replayed.
  function rng(seed: number) {
    return () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
  }
  test.each(Array.from({ length: 40 }, (_, i) => i + 1))('seed %d', (seed) => {
    const r = rng(seed);
    const n = Math.floor(r() * 300);
    const start = Date.UTC(2024, 0, 1);
    const input = Array.from({ length: n }, (_, i) => ({
      id: `b${i}`,
      time: new Date(start + Math.floor(r() * 3 * 365 * 86400) * 1000),
      item: i,
      protect: r() < 0.02 ? ['newest verified backup'] : [],
    }));
    const counts = {
      last: Math.floor(r() * 5),
      hourly: Math.floor(r() * 5),
      daily: Math.floor(r() * 10),
      weekly: Math.floor(r() * 6),
      monthly: Math.floor(r() * 13),
      yearly: Math.floor(r() * 3),
    };
    if (Object.values(counts).every((c) => c === 0)) counts.daily = 1;
    const tz = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'][seed % 4]!;
    const plan = planRetention(input, { ...NONE, ...counts }, { timeZone: tz, now: NOW });
    const ids = [...plan.keep, ...plan.remove].map((x) => x.id).sort();
    expect(ids).toEqual(input.map((x) => x.id).sort()); // a partition: nothing lost, nothing twice
    for (const k of plan.keep) expect(k.reasons.length).toBeGreaterThan(0);
    const protectedCount = input.filter((x) => x.protect.length).length;
    const sum = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(plan.keep.length).toBeLessThanOrEqual(sum + protectedCount);
    if (n > 0)
      expect(plan.keep.map((k) => k.id)).toContain(
        [...input].sort((a, b) => b.time.getTime() - a.time.getTime())[0]!.id,
      );
  });
});
