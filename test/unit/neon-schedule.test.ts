import { UserError } from '../../src/lib/errors.js';
import {
  diffSchedule,
  formatScheduleItem,
  parseSchedule,
  scheduleDiffMarkdown,
  type BackupScheduleItem,
} from '../../src/lib/neon-schedule.js';

const H = 3600;
const D = 86400;

describe('parseSchedule: accepted forms -> the API items', () => {
  test.each<[string, BackupScheduleItem[]]>([
    // The five documented examples.
    ['hourly keep 24h', [{ frequency: 'hourly', retention_seconds: 24 * H }]],
    ['daily 02:00 keep 7d', [{ frequency: 'daily', hour: 2, retention_seconds: 7 * D }]],
    ['weekly sun 03:00 keep 4w', [{ frequency: 'weekly', day: 7, hour: 3, retention_seconds: 28 * D }]],
    ['monthly 1 04:00 keep 12mo', [{ frequency: 'monthly', day: 1, hour: 4, retention_seconds: 360 * D }]],
    [
      'yearly jan 1 05:00 keep 7y',
      [{ frequency: 'yearly', month: 1, day: 1, hour: 5, retention_seconds: 7 * 365 * D }],
    ],
    // Weekdays: ISO 8601 numbering, short and full names, any case.
    ['weekly mon 00:00', [{ frequency: 'weekly', day: 1, hour: 0 }]],
    ['weekly Wednesday 03:00', [{ frequency: 'weekly', day: 3, hour: 3 }]],
    ['weekly SAT 03:00', [{ frequency: 'weekly', day: 6, hour: 3 }]],
    ['weekly sunday 03:00', [{ frequency: 'weekly', day: 7, hour: 3 }]],
    // Months: short and full names, any case; the day within the month.
    ['yearly December 31 23:00 keep forever', [{ frequency: 'yearly', month: 12, day: 31, hour: 23 }]],
    ['yearly FEB 29 05:00', [{ frequency: 'yearly', month: 2, day: 29, hour: 5 }]],
    ['yearly sep 30 05:00', [{ frequency: 'yearly', month: 9, day: 30, hour: 5 }]],
    ['monthly 31 04:00', [{ frequency: 'monthly', day: 31, hour: 4 }]],
    // Case of the keywords, keep forever, no keep, one-digit hour, UTC suffix.
    ['DAILY 02:00 KEEP 7D', [{ frequency: 'daily', hour: 2, retention_seconds: 7 * D }]],
    ['daily 02:00 keep forever', [{ frequency: 'daily', hour: 2 }]],
    ['daily 02:00', [{ frequency: 'daily', hour: 2 }]],
    ['hourly', [{ frequency: 'hourly' }]],
    ['daily 2:00 keep 7d', [{ frequency: 'daily', hour: 2, retention_seconds: 7 * D }]],
    ['daily 02:00 UTC keep 36h', [{ frequency: 'daily', hour: 2, retention_seconds: 36 * H }]],
    ['weekly sun 03:00 utc', [{ frequency: 'weekly', day: 7, hour: 3 }]],
    // Retention units and sums.
    ['hourly keep 1h', [{ frequency: 'hourly', retention_seconds: H }]],
    ['hourly keep 3600s', [{ frequency: 'hourly', retention_seconds: H }]],
    ['hourly keep 90m', [{ frequency: 'hourly', retention_seconds: 90 * 60 }]],
    ['daily 02:00 keep 1d12h30m', [{ frequency: 'daily', hour: 2, retention_seconds: D + 12 * H + 30 * 60 }]],
    ['daily 02:00 keep 1y6mo', [{ frequency: 'daily', hour: 2, retention_seconds: 365 * D + 180 * D }]],
    ['daily 02:00 keep 1d12h', [{ frequency: 'daily', hour: 2, retention_seconds: 36 * H }]],
    // Whitespace, CRLF, blank lines, comments; several entries of one frequency.
    ['   daily\t02:00   keep 7d   ', [{ frequency: 'daily', hour: 2, retention_seconds: 7 * D }]],
    [
      '# ours\r\ndaily 02:00 keep 7d\r\n\r\n  # twice a day\r\ndaily 14:00 keep 2d  # and a comment\r\n',
      [
        { frequency: 'daily', hour: 2, retention_seconds: 7 * D },
        { frequency: 'daily', hour: 14, retention_seconds: 2 * D },
      ],
    ],
    [
      'hourly keep 24h\ndaily 02:00 keep 7d\nweekly sun 03:00 keep 4w\nmonthly 1 04:00 keep 12mo\nyearly jan 1 05:00 keep 7y',
      [
        { frequency: 'hourly', retention_seconds: 24 * H },
        { frequency: 'daily', hour: 2, retention_seconds: 7 * D },
        { frequency: 'weekly', day: 7, hour: 3, retention_seconds: 28 * D },
        { frequency: 'monthly', day: 1, hour: 4, retention_seconds: 360 * D },
        { frequency: 'yearly', month: 1, day: 1, hour: 5, retention_seconds: 7 * 365 * D },
      ],
    ],
    // off: the empty schedule.
    ['off', []],
    [' OFF \r\n', []],
    ['# scheduled snapshots are off\noff\n', []],
  ])('%j', (text, items) => {
    expect(parseSchedule(text)).toStrictEqual(items);
  });
});

function refusal(text: string, input?: string): UserError {
  try {
    parseSchedule(text, input);
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

describe('parseSchedule: refusals name the input, the line and the fix', () => {
  test.each<[string, number, RegExp]>([
    ['fortnightly 02:00 keep 7d', 1, /"fortnightly" is not a frequency.*hourly, daily, weekly, monthly, yearly/],
    ['daily 02:00 keep 7d\noff', 2, /"off" is not a frequency.*only as the whole input, alone/],
    ['daily 02:30 keep 7d', 1, /"02:30": Neon schedules snapshots on the hour only.*Use 02:00\./],
    ['# c\n\ndaily 2:15', 3, /on the hour only.*Use 02:00\./],
    ['daily 24:00', 1, /"24:00" is not a time of day.*00:00 to 23:00/],
    ['daily 02:60', 1, /"02:60" is not a time of day/],
    ['daily 002:00', 1, /"002:00" is not a time of day/],
    ['daily keep 7d', 1, /daily needs a time of day in UTC.*`daily 02:00 keep 7d`/],
    ['weekly sun keep 4w', 1, /weekly needs a time of day/],
    ['monthly 1', 1, /monthly needs a time of day/],
    ['yearly jan 1', 1, /yearly needs a time of day/],
    ['hourly 02:00 keep 24h', 1, /`hourly` takes no time.*`hourly keep 24h`.*`daily HH:00/],
    ['hourly keep 30m', 1, /keeps snapshots 1800 s.*at least 1 hour.*`m` is minutes, months are `mo`/],
    ['hourly keep 59m', 1, /keeps snapshots 3540 s.*months are `mo`/],
    ['hourly keep 1800s', 1, /at least 1 hour \(retention_seconds ≥ 3600\)/],
    ['hourly keep 0h', 1, /at least 1 hour/],
    ['daily 02:00 keep 7', 1, /"7" is not a retention/],
    ['daily 02:00 keep 1.5d', 1, /"1.5d" is not a retention/],
    ['daily 02:00 keep', 1, /`keep` takes one duration/],
    ['daily 02:00 keep 7d 8d', 1, /`keep` takes one duration/],
    ['daily keep 7d 02:00', 1, /`keep` takes one duration, last on the line/],
    ['weekly 03:00 keep 4w', 1, /weekly needs a weekday.*mon \.\.\. sun/],
    ['weekly 7 03:00', 1, /"7": write the weekday by name/],
    ['weekly sunday-ish 03:00', 1, /"sunday-ish" is not a weekday/],
    ['weekly su 03:00', 1, /"su" is not a weekday/],
    ['weekly sun mon 03:00', 1, /unexpected "mon".*One entry per line/],
    ['monthly 32 04:00', 1, /"32" is not a day of the month \(1 to 31\)/],
    ['monthly 0 04:00', 1, /"0" is not a day of the month/],
    ['monthly first 04:00', 1, /"first" is not a day of the month/],
    ['monthly 04:00', 1, /monthly needs a day of the month.*29-31 are skipped/],
    ['yearly 1 05:00', 1, /yearly needs a month name and a day.*jan \.\.\. dec/],
    ['yearly 05:00', 1, /yearly needs a month name and a day/],
    ['yearly janu 1 05:00', 1, /"janu" is not a month/],
    ['yearly feb 30 05:00', 1, /"30" is not a day of february \(1 to 29\)/],
    ['yearly apr 31 05:00', 1, /"31" is not a day of april \(1 to 30\)/],
    ['yearly jan 05:00', 1, /yearly needs a day of the month/],
    ['daily mon 02:00', 1, /unexpected "mon"/],
    ['daily 02:00 03:00', 1, /unexpected "02:00".*One entry per line/],
    ['daily 02:00 7d', 1, /unexpected "7d" \(a retention is `keep 7d`\)/],
    ['hourly now keep 24h', 1, /unexpected "now"/],
    ['daily 02:00 UTC UTC', 1, /unexpected "UTC"/],
  ])('%j: line %d', (text, line, message) => {
    const err = refusal(text);
    expect(err.message).toMatch(/^Input `schedule`: /);
    expect(err.message).toContain(`line ${line} "`);
    expect(err.message).toMatch(message);
  });

  test.each(['', '\n\n', '  # only a comment\r\n'])('%j: empty, and the message says `off` disables', (text) => {
    expect(refusal(text).message).toMatch(/^Input `schedule`: is empty.*write `off` to turn scheduled snapshots off/);
  });

  test('the line is quoted as written, and another input name is used', () => {
    expect(refusal('daily 02:00\n  Daily 02:30 keep 7d  ', 'neon-schedule').message).toMatch(
      /^Input `neon-schedule`: line 2 "Daily 02:30 keep 7d": /,
    );
  });
});

describe('formatScheduleItem', () => {
  test.each([
    'hourly keep 1d',
    'daily 02:00 keep 1w',
    'weekly sun 03:00 keep 4w',
    'weekly mon 00:00 keep forever',
    'monthly 1 04:00 keep 12mo',
    'monthly 31 23:00 keep 2mo',
    'yearly jan 1 05:00 keep 7y',
    'yearly dec 31 23:00 keep forever',
    'daily 14:00 keep 36h',
    'daily 02:00 keep 5401s',
    'daily 02:00 keep 90m',
    'hourly keep forever',
  ])('format(parse(%j)) round-trips', (line) => {
    const [item] = parseSchedule(line);
    expect(formatScheduleItem(item!)).toBe(line);
    expect(parseSchedule(formatScheduleItem(item!))).toStrictEqual([item]);
  });

  test.each<[string, string]>([
    ['daily 02:00 keep 7d', 'daily 02:00 keep 1w'],
    ['daily 2:00 UTC keep 24h', 'daily 02:00 keep 1d'],
    ['weekly Sunday 03:00 keep 28d', 'weekly sun 03:00 keep 4w'],
    ['yearly JANUARY 1 05:00 keep 365d', 'yearly jan 1 05:00 keep 1y'],
    ['daily 02:00 keep 360d', 'daily 02:00 keep 12mo'],
    ['daily 02:00', 'daily 02:00 keep forever'],
  ])('%j is written canonically as %j', (line, canonical) => {
    expect(formatScheduleItem(parseSchedule(line)[0]!)).toBe(canonical);
  });

  test.each<[BackupScheduleItem, string]>([
    [{ frequency: 'weekly', day: 9, hour: 3 }, 'weekly day 9 03:00 keep forever'],
    [{ frequency: 'weekly', hour: 3 }, 'weekly 03:00 keep forever'],
    [{ frequency: 'yearly', month: 13, day: 40, hour: 25 }, 'yearly month 13 day 40 hour 25 keep forever'],
    [{ frequency: 'daily', hour: 2, retention_seconds: 3601 }, 'daily 02:00 keep 3601s'],
    [{ frequency: 'daily', hour: 2, retention_seconds: 0 }, 'daily 02:00 keep 0s'],
    [{ frequency: 'daily', hour: 2.5, retention_seconds: 1.5 }, 'daily hour 2.5 keep 1.5s'],
    [{ frequency: 'hourly', hour: 4, day: 2, month: 3, retention_seconds: D }, 'hourly keep 1d'],
    [{ frequency: 'daily', hour: 4, day: 2, month: 3 }, 'daily 04:00 keep forever'],
    [{ frequency: 'fortnightly', hour: 4, day: 2 }, 'fortnightly day 2 hour 4 keep forever'],
  ])('an API item the parser could not produce: %j -> %j', (item, text) => {
    expect(formatScheduleItem(item)).toBe(text);
  });
});

describe('diffSchedule: multisets, order-insensitive, unused fields ignored', () => {
  test.each<[string, BackupScheduleItem[], BackupScheduleItem[], [number, number, number, boolean]]>([
    [
      'the same, in another order',
      parseSchedule('daily 02:00 keep 7d\nweekly sun 03:00\nhourly keep 1d'),
      parseSchedule('hourly keep 1d\nweekly sun 03:00\ndaily 02:00 keep 7d'),
      [3, 0, 0, false],
    ],
    [
      'API items with undefined and unused fields',
      [
        { frequency: 'hourly', hour: 0, day: 1, month: 1, retention_seconds: H },
        { frequency: 'daily', hour: 2, day: 5, month: 6, retention_seconds: undefined },
        { frequency: 'weekly', day: 7, hour: 3, month: 12 },
        { frequency: 'monthly', day: 1, hour: 4, month: 2, retention_seconds: 360 * D },
      ],
      parseSchedule('hourly keep 1h\ndaily 02:00\nweekly sun 03:00\nmonthly 1 04:00 keep 12mo'),
      [4, 0, 0, false],
    ],
    [
      'a yearly month counts',
      [{ frequency: 'yearly', month: 2, day: 1, hour: 5 }],
      parseSchedule('yearly jan 1 05:00'),
      [0, 1, 1, true],
    ],
    [
      'one added, one removed',
      parseSchedule('daily 02:00 keep 7d\nhourly keep 1d'),
      parseSchedule('daily 03:00 keep 7d\nhourly keep 24h'),
      [1, 1, 1, true],
    ],
    [
      'a retention change',
      parseSchedule('daily 02:00 keep 7d'),
      parseSchedule('daily 02:00 keep 14d'),
      [0, 1, 1, true],
    ],
    [
      'forever against a retention',
      parseSchedule('daily 02:00'),
      parseSchedule('daily 02:00 keep 7d'),
      [0, 1, 1, true],
    ],
    [
      'duplicates count: one fewer',
      parseSchedule('daily 02:00\ndaily 02:00'),
      parseSchedule('daily 02:00'),
      [1, 0, 1, true],
    ],
    [
      'duplicates count: one more',
      parseSchedule('daily 02:00'),
      parseSchedule('daily 02:00\ndaily 02:00'),
      [1, 1, 0, true],
    ],
    ['turned off', parseSchedule('daily 02:00'), parseSchedule('off'), [0, 0, 1, true]],
    ['turned on', [], parseSchedule('hourly keep 1d'), [0, 1, 0, true]],
    ['nothing either side', [], [], [0, 0, 0, false]],
  ])('%s', (_label, current, wanted, [unchanged, added, removed, changed]) => {
    const d = diffSchedule(current, wanted);
    expect([d.unchanged.length, d.added.length, d.removed.length, d.changed]).toEqual([
      unchanged,
      added,
      removed,
      changed,
    ]);
  });

  test('added and unchanged are the wanted items, removed the current ones', () => {
    const current: BackupScheduleItem[] = [
      { frequency: 'hourly', hour: 7, retention_seconds: D },
      { frequency: 'daily', hour: 1 },
    ];
    const wanted = parseSchedule('hourly keep 1d\ndaily 02:00');
    expect(diffSchedule(current, wanted)).toStrictEqual({
      unchanged: [wanted[0]],
      added: [wanted[1]],
      removed: [current[1]],
      changed: true,
    });
  });
});

describe('scheduleDiffMarkdown', () => {
  test.each<[string, BackupScheduleItem[], BackupScheduleItem[], string]>([
    [
      'no change',
      parseSchedule('daily 02:00 keep 7d\nweekly sun 03:00 keep 4w'),
      parseSchedule('weekly sun 03:00 keep 4w\ndaily 02:00 keep 7d'),
      'No change: 2 entries as declared.\n\n```diff\n= weekly sun 03:00 keep 4w\n= daily 02:00 keep 1w\n```',
    ],
    [
      'a change',
      parseSchedule('daily 02:00 keep 7d\nhourly keep 1d'),
      parseSchedule('daily 03:00 keep 7d\nhourly keep 24h'),
      '1 added, 1 removed, 1 unchanged:\n\n```diff\n- daily 02:00 keep 1w\n+ daily 03:00 keep 1w\n= hourly keep 1d\n```',
    ],
    ['nothing either side', [], [], 'No change: no scheduled snapshots, and none declared.'],
  ])('%s', (_label, current, wanted, markdown) => {
    expect(scheduleDiffMarkdown(diffSchedule(current, wanted))).toBe(markdown);
  });
});
