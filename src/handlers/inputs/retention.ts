/** The retention inputs (keep-*, timezone), read alike by prune-retention and backup-report's `expect`. */
import { parseCalendarDuration } from '../../lib/duration.js';
import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import type { InputName } from '../../spec.js';
import { validTimeZone, type RetentionPolicy } from '../../core/retention.js';

/** The keep-* inputs; `-1` is unlimited; at least one rule is required. */
export function readPolicy(inputs: InputReader): RetentionPolicy {
  const count = (name: InputName) => {
    const v = inputs.int(name, -1, 1_000_000);
    return v ?? 0;
  };
  const within = inputs.optional('keep-within');
  const policy: RetentionPolicy = {
    last: count('keep-last'),
    hourly: count('keep-hourly'),
    daily: count('keep-daily'),
    weekly: count('keep-weekly'),
    monthly: count('keep-monthly'),
    yearly: count('keep-yearly'),
    ...(within ? { within: parseCalendarDuration('keep-within', within), withinText: within } : {}),
  };
  return policy;
}

export function readTimeZone(inputs: InputReader): string {
  const tz = inputs.string('timezone');
  if (!validTimeZone(tz))
    throw inputError(
      'timezone',
      `"${tz}" is not an IANA time zone`,
      'Use a name such as `UTC`, `Europe/Berlin` or `America/New_York`.',
    );
  return tz;
}
