/**
 * The `schedule` input of neon-snapshot, read into the API's BackupScheduleItem list, written back, and compared.
 * Pure: no I/O. The API (spec: BackupScheduleItem) has frequency, hour 0-23, day 1-31 (of the week or the month),
 * month 1-12 and retention_seconds >= 3600 (absent: kept forever); it has no minutes, so times are on the hour.
 */
import { inputError } from './errors.js';

export interface BackupScheduleItem {
  frequency: string;
  hour?: number;
  day?: number;
  month?: number;
  retention_seconds?: number;
}

export const FREQUENCIES = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type Frequency = (typeof FREQUENCIES)[number];

/** The spec does not state how `day` numbers weekdays; these are ISO 8601's (Monday 1 ... Sunday 7). */
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

/** Retention units, largest first (months of 30 days and years of 365, as a fixed number of seconds must be). */
const KEEP_UNITS: [string, number][] = [
  ['y', 365 * 86400],
  ['mo', 30 * 86400],
  ['w', 7 * 86400],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];
const MIN_RETENTION = 3600;

const EXAMPLES =
  '`hourly keep 24h`, `daily 02:00 keep 7d`, `weekly sun 03:00 keep 4w`, `monthly 1 04:00 keep 12mo`, `yearly jan 1 05:00 keep 7y`';

function nameIndex(names: string[], token: string): number | undefined {
  const t = token.toLowerCase();
  const i = names.findIndex((n) => n === t || (t.length === 3 && n.startsWith(t)));
  return i < 0 ? undefined : i + 1;
}

function parseKeep(text: string): number | undefined {
  const re = /(\d+)(mo|[ywdhms])/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * KEEP_UNITS.find(([u]) => u === m![2])![1];
    matched = re.lastIndex;
  }
  return text && matched === text.length ? total : undefined;
}

/**
 * Reads the schedule, one entry per line (blank lines and `#` comments ignored); `off` alone is the empty schedule.
 * Several entries of one frequency are allowed, as the API's list allows them.
 */
export function parseSchedule(text: string, input = 'schedule'): BackupScheduleItem[] {
  const lines = text.split(/\r?\n/).map((l, i) => ({ n: i + 1, text: l.replace(/#.*$/, '').trim() }));
  const entries = lines.filter((l) => l.text);
  if (!entries.length)
    throw inputError(
      input,
      'is empty',
      `Declare one entry per line, e.g. ${EXAMPLES}; or \`off\` to turn scheduled snapshots off.`,
    );
  if (entries.length === 1 && entries[0]!.text.toLowerCase() === 'off') return [];
  return entries.map(({ n, text: line }) => parseLine(line, n, input));
}

function parseLine(line: string, n: number, input: string): BackupScheduleItem {
  const fail = (problem: string, fix: string) => inputError(input, `line ${n} "${line}": ${problem}`, fix);
  const tokens = line.split(/\s+/);
  const frequency = tokens.shift()!.toLowerCase();
  if (!(FREQUENCIES as readonly string[]).includes(frequency))
    throw fail(
      `"${frequency}" is not a frequency Neon schedules`,
      `Start the line with one of ${FREQUENCIES.join(', ')}${frequency === 'off' ? ' (`off` turns the schedule off only alone)' : ''}.`,
    );
  const f = frequency as Frequency;
  // Retention: `keep <duration>` or `keep forever`, at the end of the line.
  let retention: number | undefined;
  const keepAt = tokens.findIndex((t) => t.toLowerCase() === 'keep');
  if (keepAt >= 0) {
    const keep = tokens.slice(keepAt + 1);
    tokens.splice(keepAt);
    if (keep.length !== 1)
      throw fail('`keep` takes one duration', 'Write e.g. `keep 7d`, `keep 12mo`, `keep 7y` or `keep forever`.');
    const k = keep[0]!.toLowerCase();
    if (k !== 'forever') {
      retention = parseKeep(k);
      if (retention === undefined)
        throw fail(
          `"${keep[0]}" is not a duration`,
          'Use h, d, w, mo (30 days) or y (365 days), e.g. `keep 36h`, `keep 7d`, `keep 12mo`.',
        );
      if (retention < MIN_RETENTION)
        throw fail(
          `keeps snapshots ${retention} s; Neon keeps scheduled snapshots at least 1 hour (retention_seconds ≥ 3600)`,
          'Keep them 1h or longer, e.g. `keep 24h`.',
        );
    }
  }
  if (tokens.at(-1)?.toUpperCase() === 'UTC') tokens.pop();
  const item: BackupScheduleItem = { frequency: f };
  const wantTime = f !== 'hourly';
  if (!wantTime) {
    if (tokens.length)
      throw fail(
        '`hourly` takes no day or time (a snapshot every hour)',
        'Write `hourly keep 24h`, or use `daily HH:00` for one a day.',
      );
  } else {
    const time = tokens.pop();
    const m = time ? /^(\d{1,2}):(\d{2})$/.exec(time) : null;
    if (!m)
      throw fail(
        `${f} needs a time of day (UTC) at the end, before \`keep\``,
        `Write e.g. ${EXAMPLES.split(', ')[FREQUENCIES.indexOf(f)]}.`,
      );
    const hour = Number(m[1]);
    if (hour > 23) throw fail(`${time} is not a time of day`, 'Use 00:00 to 23:00.');
    if (m[2] !== '00')
      throw fail(
        `${time}: Neon schedules snapshots on the hour only (the API has no minutes)`,
        `Use ${String(hour).padStart(2, '0')}:00.`,
      );
    item.hour = hour;
  }
  if (f === 'weekly') {
    const day = tokens.length === 1 ? nameIndex(WEEKDAYS, tokens[0]!) : undefined;
    if (day === undefined)
      throw fail('weekly needs one weekday before the time', 'Write e.g. `weekly sun 03:00 keep 4w` (mon ... sun).');
    item.day = day;
  } else if (f === 'monthly' || f === 'yearly') {
    if (f === 'yearly') {
      const month = tokens.length === 2 ? nameIndex(MONTHS, tokens.shift()!) : undefined;
      if (month === undefined)
        throw fail('yearly needs a month and a day before the time', 'Write e.g. `yearly jan 1 05:00 keep 7y`.');
      item.month = month;
    }
    const d = tokens.length === 1 && /^\d{1,2}$/.test(tokens[0]!) ? Number(tokens[0]) : undefined;
    if (d === undefined || d < 1 || d > 31)
      throw fail(
        `${f} needs a day of the month from 1 to 31 before the time`,
        `Write e.g. ${f === 'monthly' ? '`monthly 1 04:00 keep 12mo`' : '`yearly jan 1 05:00 keep 7y`'} (days 29-31 are skipped in shorter months).`,
      );
    item.day = d;
  } else if (tokens.length) {
    throw fail(`unexpected "${tokens.join(' ')}"`, `Write e.g. ${EXAMPLES.split(', ')[FREQUENCIES.indexOf(f)]}.`);
  }
  if (retention !== undefined) item.retention_seconds = retention;
  return item;
}

/** The fields a frequency uses; the API may send the others, and they mean nothing for it. */
function normalise(i: BackupScheduleItem): BackupScheduleItem {
  const f = i.frequency;
  const out: BackupScheduleItem = { frequency: f };
  if (f !== 'hourly' && i.hour !== undefined) out.hour = i.hour;
  if ((f === 'weekly' || f === 'monthly' || f === 'yearly') && i.day !== undefined) out.day = i.day;
  if (f === 'yearly' && i.month !== undefined) out.month = i.month;
  if (i.retention_seconds !== undefined && i.retention_seconds !== null) out.retention_seconds = i.retention_seconds;
  return out;
}

function keepText(seconds: number | undefined): string {
  if (seconds === undefined) return 'keep forever';
  for (const [unit, size] of KEEP_UNITS) if (seconds % size === 0) return `keep ${seconds / size}${unit}`;
  return `keep ${seconds}s`;
}

/** An item in the input's syntax; never throws, also for items the parser could not have produced. */
export function formatScheduleItem(item: BackupScheduleItem): string {
  const i = normalise(item);
  const time = i.hour !== undefined ? `${String(i.hour).padStart(2, '0')}:00` : undefined;
  const parts: (string | number | undefined)[] = [i.frequency];
  if (i.frequency === 'weekly')
    parts.push(WEEKDAYS[(i.day ?? 0) - 1]?.slice(0, 3) ?? (i.day !== undefined ? `day ${i.day}` : undefined));
  if (i.frequency === 'yearly')
    parts.push(MONTHS[(i.month ?? 0) - 1]?.slice(0, 3) ?? (i.month !== undefined ? `month ${i.month}` : undefined));
  if (i.frequency === 'monthly' || i.frequency === 'yearly') parts.push(i.day);
  parts.push(time, keepText(i.retention_seconds));
  return parts.filter((p) => p !== undefined).join(' ');
}

export interface ScheduleDiff {
  unchanged: BackupScheduleItem[];
  added: BackupScheduleItem[];
  removed: BackupScheduleItem[];
  changed: boolean;
}

/** Current against wanted as multisets: order does not matter, and fields a frequency does not use are ignored. */
export function diffSchedule(current: BackupScheduleItem[], wanted: BackupScheduleItem[]): ScheduleDiff {
  const key = (i: BackupScheduleItem) =>
    JSON.stringify(normalise(i), ['frequency', 'hour', 'day', 'month', 'retention_seconds']);
  const left = current.map((i) => ({ i, k: key(i) }));
  const unchanged: BackupScheduleItem[] = [];
  const added: BackupScheduleItem[] = [];
  for (const w of wanted) {
    const at = left.findIndex((c) => c.k === key(w));
    if (at >= 0) {
      unchanged.push(w);
      left.splice(at, 1);
    } else added.push(w);
  }
  const removed = left.map((c) => c.i);
  return { unchanged, added, removed, changed: added.length > 0 || removed.length > 0 };
}

export function scheduleDiffMarkdown(d: ScheduleDiff): string {
  if (!d.changed && !d.unchanged.length) return 'No scheduled snapshots, and none declared: no change.';
  const lines = [
    ...d.removed.map((i) => `- ${formatScheduleItem(i)}`),
    ...d.added.map((i) => `+ ${formatScheduleItem(i)}`),
    ...d.unchanged.map((i) => `  ${formatScheduleItem(i)}`),
  ];
  return [d.changed ? 'Current (-) against declared (+):' : 'No change:', '', '```diff', ...lines, '```'].join('\n');
}
