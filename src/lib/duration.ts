import { inputError } from './errors.js';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Parses a duration such as `30s`, `10m`, `26h`, `7d`, `1h30m` into seconds (m means minutes here).
 * A bare number is seconds.
 */
export function parseDurationSeconds(input: string, value: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)([smhdw])/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (!text || matched !== text.length) {
    throw inputError(
      input,
      `"${value}" is not a duration`,
      'Use a number with a unit: s, m (minutes), h, d or w, e.g. `30s`, `26h`, `7d`.',
    );
  }
  return total;
}

/**
 * restic's duration for keep-within: years, months, days, hours. Months are written `mo` (`1y2mo3d4h`): restic's own
 * `m` means months while every other duration here reads `m` as minutes, so a bare `m` is refused as ambiguous.
 */
export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export function parseCalendarDuration(input: string, value: string): CalendarDuration {
  const text = value.trim();
  const out: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const re = /(\d+)(mo|[ymdh])/gy;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const n = Number(m[1]);
    if (m[2] === 'y') out.years += n;
    else if (m[2] === 'mo') out.months += n;
    else if (m[2] === 'm') {
      throw inputError(
        input,
        `"${value}" uses \`m\`, which restic reads as months and the other duration inputs as minutes`,
        `Write months as \`mo\` (e.g. \`${text.replace(/(\d+)m(?!o)/g, '$1mo')}\`); keep-within has no minutes.`,
      );
    } else if (m[2] === 'd') out.days += n;
    else out.hours += n;
    matched = re.lastIndex;
  }
  if (!text || matched !== text.length) {
    throw inputError(
      input,
      `"${value}" is not a retention duration`,
      'Use whole numbers with y (years), mo (months), d (days), h (hours), e.g. `1y2mo3d4h` or `90d`.',
    );
  }
  return out;
}

/** Go's time.AddDate semantics as restic uses them: the date is normalised (Jan 31 + 1 month = Mar 3). */
export function subtractCalendarDuration(fromMs: number, d: CalendarDuration): number {
  const t = new Date(fromMs);
  const shifted = Date.UTC(
    t.getUTCFullYear() - d.years,
    t.getUTCMonth() - d.months,
    t.getUTCDate() - d.days,
    t.getUTCHours() - d.hours,
    t.getUTCMinutes(),
    t.getUTCSeconds(),
    t.getUTCMilliseconds(),
  );
  return shifted;
}
