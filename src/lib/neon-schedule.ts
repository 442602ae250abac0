/**
 * The `schedule` input of neon-snapshot, read into the API's BackupScheduleItem list, written back, and compared.
 * Pure: no I/O.
 *
 * The API (spec: BackupScheduleItem) has `frequency` (hourly, daily, weekly, monthly, yearly), `hour` 0-23,
 * `day` 1-31 (of the week or of the month), `month` 1-12 and `retention_seconds` >= 3600 (absent: kept forever).
 * It has no minutes, so times are whole hours, in UTC.
 *
 * The input, one entry per line (blank lines and `#` comments ignored; `off` alone: no scheduled snapshots):
 *   hourly keep 24h
 *   daily 02:00 keep 7d
 *   weekly sun 03:00 keep 4w
 *   monthly 1 04:00 keep 12mo      (days 29-31 are skipped in months that lack them)
 *   yearly jan 1 05:00 keep 7y
 * `keep forever`, or no `keep`, never expires them; a trailing `UTC` after the time is accepted.
 */
import { inputError } from './errors.js';

/** One schedule entry as the API reads and writes it. `frequency` is a string, as the spec (and its client) type it. */
export interface BackupScheduleItem {
  frequency: string;
  hour?: number;
  day?: number;
  month?: number;
  retention_seconds?: number;
}

export const FREQUENCIES = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type Frequency = (typeof FREQUENCIES)[number];

/** An entry parseSchedule produced: its frequency is one the API knows. */
export interface ScheduleEntry extends BackupScheduleItem {
  frequency: Frequency;
}

/**
 * The spec does not state how `day` numbers the weekdays of a weekly entry; these are ISO 8601's (Monday 1 ...
 * Sunday 7). Full names or their first three letters, any case.
 */
const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
/** The longest each month gets (February 29 runs in leap years only). */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const HOUR = 3600;
const DAY = 86400;
/**
 * Retention units, largest first. s, m (minutes), h, d and w have the lengths of src/lib/duration.ts's
 * parseDurationSeconds; the API takes a fixed number of seconds, so a month is 30 days and a year 365. Months are
 * `mo`, as in keep-within, so that `m` means minutes in every duration the suite reads.
 */
const KEEP_UNITS: readonly (readonly [string, number])[] = [
  ['y', 365 * DAY],
  ['mo', 30 * DAY],
  ['w', 7 * DAY],
  ['d', DAY],
  ['h', HOUR],
  ['m', 60],
  ['s', 1],
];
const MIN_RETENTION = HOUR;

const EXAMPLE: Record<Frequency, string> = {
  hourly: '`hourly keep 24h`',
  daily: '`daily 02:00 keep 7d`',
  weekly: '`weekly sun 03:00 keep 4w`',
  monthly: '`monthly 1 04:00 keep 12mo`',
  yearly: '`yearly jan 1 05:00 keep 7y`',
};
const EXAMPLES = FREQUENCIES.map((f) => EXAMPLE[f]).join(', ');

const two = (n: number) => String(n).padStart(2, '0');

/** 1-based index of a full name or its three-letter abbreviation, any case. */
function nameIndex(names: string[], token: string): number | undefined {
  const t = token.toLowerCase();
  const i = names.findIndex((name) => name === t || name.slice(0, 3) === t);
  return i < 0 ? undefined : i + 1;
}

type Keep = { seconds: number } | { problem: string; fix: string };

/** `7d`, `12mo`, `1y6mo`, `36h`, `5400s`: whole numbers with units, into seconds. */
function parseKeep(token: string): Keep {
  const text = token.toLowerCase();
  const re = /(\d+)(mo|[ywdhsm])/gy;
  let seconds = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    seconds += Number(m[1]) * KEEP_UNITS.find(([unit]) => unit === m![2])![1];
    matched = re.lastIndex;
  }
  if (matched !== text.length || !text)
    return {
      problem: `"${token}" is not a retention`,
      fix: 'Use whole numbers with m (minutes), h, d, w, mo (30 days) or y (365 days), e.g. `keep 36h`, `keep 7d`, `keep 12mo`, or `keep forever`.',
    };
  return { seconds };
}

/**
 * Reads the schedule input, one entry per line; blank lines and comments (from `#` to the end of the line) are
 * ignored, surrounding whitespace and CRLF tolerated. `off` alone is the empty schedule (no scheduled snapshots).
 * Several entries of one frequency are allowed, as the API's list allows them. Throws a UserError naming the input,
 * the line number and the line.
 */
export function parseSchedule(text: string, input = 'schedule'): ScheduleEntry[] {
  const entries = text
    .split(/\r?\n/)
    .map((raw, i) => ({ n: i + 1, line: raw.replace(/#.*$/, '').trim() }))
    .filter((e) => e.line);
  if (!entries.length)
    throw inputError(
      input,
      'is empty; schedule mode needs the schedule to declare',
      `Write one entry per line, e.g. ${EXAMPLES}; or write \`off\` to turn scheduled snapshots off.`,
    );
  if (entries.length === 1 && entries[0]!.line.toLowerCase() === 'off') return [];
  return entries.map(({ n, line }) => parseLine(line, n, input));
}

function parseLine(line: string, n: number, input: string): ScheduleEntry {
  const fail = (problem: string, fix: string) => inputError(input, `line ${n} "${line}": ${problem}`, fix);
  const tokens = line.split(/\s+/);
  const word = tokens.shift()!;
  const frequency = FREQUENCIES.find((f) => f === word.toLowerCase());
  if (!frequency)
    throw fail(
      `"${word}" is not a frequency Neon schedules`,
      word.toLowerCase() === 'off'
        ? '`off` turns scheduled snapshots off only as the whole input, alone; remove the other lines, or this one.'
        : `Start the line with one of ${FREQUENCIES.join(', ')}, e.g. ${EXAMPLES}.`,
    );
  const example = `Write e.g. ${EXAMPLE[frequency]}.`;
  const names = (list: string) => `Write e.g. ${EXAMPLE[frequency]} (${list}, or the full names).`;
  const item: ScheduleEntry = { frequency };

  // Retention: `keep <duration>` or `keep forever`, last on the line.
  const keepAt = tokens.findIndex((t) => t.toLowerCase() === 'keep');
  if (keepAt >= 0) {
    const keep = tokens.splice(keepAt);
    if (keep.length !== 2)
      throw fail(
        '`keep` takes one duration, last on the line',
        'Write e.g. `keep 7d`, `keep 4w`, `keep 12mo`, `keep 7y` or `keep forever`.',
      );
    if (keep[1]!.toLowerCase() !== 'forever') {
      const k = parseKeep(keep[1]!);
      if ('problem' in k) throw fail(k.problem, k.fix);
      if (k.seconds < MIN_RETENTION)
        throw fail(
          `keeps snapshots ${k.seconds} s; Neon keeps scheduled snapshots at least 1 hour (retention_seconds ≥ 3600)`,
          /\dm(?!o)/i.test(keep[1]!)
            ? 'Keep them 1h or longer, e.g. `keep 24h`; `m` is minutes, months are `mo` (e.g. `keep 12mo`).'
            : 'Keep them 1h or longer, e.g. `keep 24h`, or `keep forever`.',
        );
      item.retention_seconds = k.seconds;
    }
  }
  if (tokens.at(-1)?.toUpperCase() === 'UTC') tokens.pop();

  // The time of day, last before `keep`: H:00 or HH:00, UTC. Hourly has none.
  const looksLikeTime = (t: string | undefined) => t !== undefined && /^\d+:\d+$/.test(t);
  const afterTime: string[] = [];
  if (frequency === 'hourly') {
    if (looksLikeTime(tokens.at(-1)))
      throw fail(
        '`hourly` takes no time: Neon takes a snapshot every hour',
        'Write `hourly keep 24h`, or `daily HH:00 keep 7d` for one snapshot a day at that hour.',
      );
  } else {
    // The last time-like token; what follows it is stray and reported as such below.
    const at = tokens.map(looksLikeTime).lastIndexOf(true);
    if (at < 0) throw fail(`${frequency} needs a time of day in UTC, on the hour, before \`keep\``, example);
    const [time] = tokens.splice(at, 1);
    afterTime.push(...tokens.splice(at));
    const m = /^(\d{1,2}):(\d{2})$/.exec(time!);
    const hour = m ? Number(m[1]) : NaN;
    if (!m || hour > 23 || Number(m[2]) > 59)
      throw fail(`"${time}" is not a time of day`, 'Use HH:00 from 00:00 to 23:00 (UTC).');
    if (m[2] !== '00')
      throw fail(
        `"${time}": Neon schedules snapshots on the hour only (the API has no minutes)`,
        `Use ${two(hour)}:00.`,
      );
    item.hour = hour;
  }

  // What comes between the frequency and the time: the weekday, the day of the month, the month and day.
  if (frequency === 'weekly') {
    const t = tokens.shift();
    if (t === undefined) throw fail('weekly needs a weekday before the time', names('mon ... sun'));
    if (/^\d+$/.test(t))
      throw fail(
        `"${t}": write the weekday by name (the API's numbering of weekdays is not documented)`,
        'Use mon, tue, wed, thu, fri, sat or sun (or the full name).',
      );
    const day = nameIndex(WEEKDAYS, t);
    if (day === undefined)
      throw fail(`"${t}" is not a weekday`, 'Use mon, tue, wed, thu, fri, sat or sun (or the full name).');
    item.day = day;
  } else if (frequency === 'yearly') {
    const t = tokens.shift();
    if (t === undefined || /^\d+$/.test(t))
      throw fail('yearly needs a month name and a day before the time', names('jan ... dec'));
    const month = nameIndex(MONTHS, t);
    if (month === undefined) throw fail(`"${t}" is not a month`, 'Use jan ... dec (or the full name).');
    item.month = month;
  }
  if (frequency === 'monthly' || frequency === 'yearly') {
    const t = tokens.shift();
    const max = item.month ? MONTH_DAYS[item.month - 1]! : 31;
    const day = t !== undefined && /^\d{1,2}$/.test(t) ? Number(t) : undefined;
    if (day === undefined || day < 1 || day > max)
      throw fail(
        t === undefined
          ? `${frequency} needs a day of the month before the time`
          : `"${t}" is not a day ${item.month ? `of ${MONTHS[item.month - 1]}` : 'of the month'} (1 to ${max})`,
        frequency === 'monthly'
          ? `${example} A day from 1 to 31; days 29-31 are skipped in months that lack them.`
          : example,
      );
    item.day = day;
  }
  tokens.push(...afterTime);
  if (tokens.length) {
    const stray = tokens.join(' ');
    const keepHint =
      tokens.length === 1 && 'seconds' in parseKeep(tokens[0]!) ? ` (a retention is \`keep ${stray}\`)` : '';
    throw fail(`unexpected "${stray}"${keepHint}`, `${example} One entry per line.`);
  }
  return item;
}

/** The fields a frequency uses; the API may send the others, and they mean nothing for it. Unknown: all kept. */
function normalise(i: BackupScheduleItem): BackupScheduleItem {
  const f = i.frequency;
  const known = (FREQUENCIES as readonly string[]).includes(f);
  const out: BackupScheduleItem = { frequency: f };
  if (f !== 'hourly' && i.hour != null) out.hour = i.hour;
  if ((f !== 'hourly' && f !== 'daily') || !known) {
    if (i.day != null) out.day = i.day;
  }
  if ((f === 'yearly' || !known) && i.month != null) out.month = i.month;
  if (i.retention_seconds != null) out.retention_seconds = i.retention_seconds;
  return out;
}

function keepText(seconds: number | undefined): string {
  if (seconds === undefined) return 'keep forever';
  if (Number.isInteger(seconds) && seconds > 0)
    for (const [unit, size] of KEEP_UNITS) if (seconds % size === 0) return `keep ${seconds / size}${unit}`;
  return `keep ${seconds}s`;
}

const inRange = (n: number | undefined, lo: number, hi: number): n is number =>
  n !== undefined && Number.isInteger(n) && n >= lo && n <= hi;

/**
 * An item in the input's syntax (`weekly sun 03:00 keep 4w`; retention in the largest exact unit). Never throws:
 * what the parser could not have produced is written with raw numbers (`weekly day 9 03:00 keep forever`).
 */
export function formatScheduleItem(item: BackupScheduleItem): string {
  const i = normalise(item);
  const f = i.frequency;
  const known = (FREQUENCIES as readonly string[]).includes(f);
  const parts: string[] = [f];
  const raw = (name: string, n: number | undefined) => (n === undefined ? [] : [`${name} ${n}`]);
  if (!known) {
    parts.push(...raw('month', i.month), ...raw('day', i.day), ...raw('hour', i.hour));
  } else {
    if (f === 'weekly') parts.push(...(inRange(i.day, 1, 7) ? [WEEKDAYS[i.day - 1]!.slice(0, 3)] : raw('day', i.day)));
    if (f === 'yearly')
      parts.push(...(inRange(i.month, 1, 12) ? [MONTHS[i.month - 1]!.slice(0, 3)] : raw('month', i.month)));
    if (f === 'monthly' || f === 'yearly') parts.push(...(inRange(i.day, 1, 31) ? [String(i.day)] : raw('day', i.day)));
    if (f !== 'hourly') parts.push(...(inRange(i.hour, 0, 23) ? [`${two(i.hour)}:00`] : raw('hour', i.hour)));
  }
  parts.push(keepText(i.retention_seconds));
  return parts.join(' ');
}

export interface ScheduleDiff {
  /** Wanted entries the current schedule already has. */
  unchanged: BackupScheduleItem[];
  /** Wanted entries it lacks. */
  added: BackupScheduleItem[];
  /** Current entries not wanted. */
  removed: BackupScheduleItem[];
  changed: boolean;
}

/**
 * Current against wanted as multisets: order does not matter, duplicates count, absent and undefined (or null)
 * fields are alike, and fields a frequency does not use are ignored (hourly: hour, day, month; daily: day, month;
 * weekly and monthly: month).
 */
export function diffSchedule(current: BackupScheduleItem[], wanted: BackupScheduleItem[]): ScheduleDiff {
  const key = (i: BackupScheduleItem) => {
    const n = normalise(i);
    return JSON.stringify([n.frequency, n.hour, n.day, n.month, n.retention_seconds]);
  };
  const left = current.map((i) => ({ i, k: key(i) }));
  const unchanged: BackupScheduleItem[] = [];
  const added: BackupScheduleItem[] = [];
  for (const w of wanted) {
    const k = key(w);
    const at = left.findIndex((c) => c.k === k);
    if (at < 0) added.push(w);
    else {
      unchanged.push(w);
      left.splice(at, 1);
    }
  }
  const removed = left.map((c) => c.i);
  return { unchanged, added, removed, changed: added.length > 0 || removed.length > 0 };
}

/** For the job summary: `- ` removed, `+ ` added, `= ` unchanged entries, in the input's syntax. */
export function scheduleDiffMarkdown(d: ScheduleDiff): string {
  if (!d.changed && !d.unchanged.length) return 'No change: no scheduled snapshots, and none declared.';
  const head = d.changed
    ? `${d.added.length} added, ${d.removed.length} removed, ${d.unchanged.length} unchanged:`
    : `No change: ${d.unchanged.length} ${d.unchanged.length === 1 ? 'entry' : 'entries'} as declared.`;
  const lines = [
    ...d.removed.map((i) => `- ${formatScheduleItem(i)}`),
    ...d.added.map((i) => `+ ${formatScheduleItem(i)}`),
    ...d.unchanged.map((i) => `= ${formatScheduleItem(i)}`),
  ];
  return [head, '', '```diff', ...lines, '```'].join('\n');
}
