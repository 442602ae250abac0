import {
  diffSchedule,
  formatScheduleItem,
  parseSchedule,
  scheduleDiffMarkdown,
  type BackupScheduleItem,
} from '../../src/lib/neon-schedule.js';

const D = 86400;

test.each<[string, BackupScheduleItem[]]>([
  ['hourly keep 24h', [{ frequency: 'hourly', retention_seconds: D }]],
  ['daily 02:00 keep 7d', [{ frequency: 'daily', hour: 2, retention_seconds: 7 * D }]],
  ['weekly sun 03:00 keep 4w', [{ frequency: 'weekly', day: 7, hour: 3, retention_seconds: 28 * D }]],
  ['weekly Monday 03:00 keep 4w', [{ frequency: 'weekly', day: 1, hour: 3, retention_seconds: 28 * D }]],
  ['monthly 1 04:00 keep 12mo', [{ frequency: 'monthly', day: 1, hour: 4, retention_seconds: 360 * D }]],
  ['yearly jan 1 05:00 keep 7y', [{ frequency: 'yearly', month: 1, day: 1, hour: 5, retention_seconds: 7 * 365 * D }]],
  ['YEARLY December 31 23:00 keep forever', [{ frequency: 'yearly', month: 12, day: 31, hour: 23 }]],
  ['daily 2:00', [{ frequency: 'daily', hour: 2 }]],
  ['daily 02:00 UTC keep 36h', [{ frequency: 'daily', hour: 2, retention_seconds: 36 * 3600 }]],
  ['hourly keep 1h', [{ frequency: 'hourly', retention_seconds: 3600 }]],
  ['hourly keep 90m', [{ frequency: 'hourly', retention_seconds: 5400 }]],
  [
    '# ours\r\ndaily 02:00 keep 7d\r\n\r\ndaily 14:00 keep 2d  # twice a day\r\n',
    [
      { frequency: 'daily', hour: 2, retention_seconds: 7 * D },
      { frequency: 'daily', hour: 14, retention_seconds: 2 * D },
    ],
  ],
  ['off', []],
  [' OFF ', []],
])('%j → the API items', (text, items) => {
  expect(parseSchedule(text)).toEqual(items);
});

test.each<[string, string, RegExp]>([
  ['', 'empty', /is empty.*`off`/],
  ['fortnightly 02:00 keep 7d', 'frequency', /line 1 .*not a frequency.*hourly, daily, weekly, monthly, yearly/],
  ['daily 02:30 keep 7d', 'minutes', /line 1 .*on the hour only.*Use 02:00/],
  ['daily 24:00', 'hour', /not a time of day/],
  ['daily keep 7d', 'no time', /needs a time of day/],
  ['hourly 02:00 keep 24h', 'hourly time', /`hourly` takes no day or time/],
  ['hourly keep 30m', 'short retention', /at least 1 hour \(retention_seconds ≥ 3600\)/],
  ['daily 02:00 keep 7', 'unitless', /"7" is not a duration/],
  ['daily 02:00 keep 7d 8d', 'two keeps', /`keep` takes one duration/],
  ['weekly 03:00 keep 4w', 'no weekday', /weekly needs one weekday/],
  ['weekly sunday-ish 03:00', 'bad weekday', /weekly needs one weekday/],
  ['monthly 32 04:00', 'day 32', /day of the month from 1 to 31/],
  ['monthly 04:00', 'no day', /day of the month/],
  ['yearly 1 05:00', 'no month', /yearly needs a month and a day/],
  ['daily mon 02:00', 'extra token', /unexpected "mon"/],
  ['daily 02:00 keep 7d\noff', 'off among entries', /line 2 .*`off` turns the schedule off only alone/],
])('%j is refused (%s), naming the input and the line', (text, _label, message) => {
  let err: Error | undefined;
  try {
    parseSchedule(text);
  } catch (e) {
    err = e as Error;
  }
  expect(err?.message).toMatch(/`schedule`/);
  expect(err?.message).toMatch(message);
});

test.each([
  'hourly keep 1d',
  'daily 02:00 keep 1w',
  'weekly sun 03:00 keep 4w',
  'monthly 1 04:00 keep 12mo',
  'yearly jan 1 05:00 keep 7y',
  'daily 14:00 keep 36h',
  'daily 02:00 keep forever',
])('format(parse(%j)) round-trips', (line) => {
  expect(formatScheduleItem(parseSchedule(line)[0]!)).toBe(line);
});

test('items the parser could not produce are still written, never thrown', () => {
  expect(formatScheduleItem({ frequency: 'weekly', day: 9, hour: 3 })).toBe('weekly day 9 03:00 keep forever');
  expect(formatScheduleItem({ frequency: 'daily', hour: 2, retention_seconds: 3601 })).toBe('daily 02:00 keep 3601s');
});

test.each<[string, BackupScheduleItem[], BackupScheduleItem[], { added: number; removed: number; changed: boolean }]>([
  [
    'the same, in another order',
    parseSchedule('daily 02:00\nweekly sun 03:00'),
    parseSchedule('weekly sun 03:00\ndaily 02:00'),
    { added: 0, removed: 0, changed: false },
  ],
  [
    'fields the frequency does not use are ignored',
    [{ frequency: 'hourly', hour: 0, day: 1, month: 1, retention_seconds: 3600 }],
    [{ frequency: 'hourly', retention_seconds: 3600 }],
    { added: 0, removed: 0, changed: false },
  ],
  [
    'one added, one removed',
    parseSchedule('daily 02:00 keep 7d'),
    parseSchedule('daily 03:00 keep 7d'),
    { added: 1, removed: 1, changed: true },
  ],
  [
    'a retention change',
    parseSchedule('daily 02:00 keep 7d'),
    parseSchedule('daily 02:00 keep 14d'),
    { added: 1, removed: 1, changed: true },
  ],
  [
    'duplicates count as a multiset',
    parseSchedule('daily 02:00\ndaily 02:00'),
    parseSchedule('daily 02:00'),
    { added: 0, removed: 1, changed: true },
  ],
  ['off', parseSchedule('daily 02:00'), [], { added: 0, removed: 1, changed: true }],
])('diff: %s', (_label, current, wanted, expected) => {
  const d = diffSchedule(current, wanted);
  expect({ added: d.added.length, removed: d.removed.length, changed: d.changed }).toEqual(expected);
});

test('the summary shows removed, added and unchanged entries in the input syntax', () => {
  const md = scheduleDiffMarkdown(
    diffSchedule(
      parseSchedule('daily 02:00 keep 7d\nhourly keep 1d'),
      parseSchedule('daily 03:00 keep 7d\nhourly keep 24h'),
    ),
  );
  expect(md).toContain('- daily 02:00 keep 1w');
  expect(md).toContain('+ daily 03:00 keep 1w');
  expect(md).toContain('  hourly keep 1d');
  expect(scheduleDiffMarkdown(diffSchedule(parseSchedule('daily 02:00'), parseSchedule('daily 02:00')))).toMatch(
    /^No change/,
  );
  expect(scheduleDiffMarkdown(diffSchedule([], []))).toMatch(/none declared/);
});
