import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import type { LockMode, ObjectLockSetting } from '../../lib/object-lock.js';

/** S3 accepts retention periods of up to 100 years. */
const MAX_DAYS = 36500;

/** `object-lock-mode` and `object-lock-days`: both or neither. */
export function readObjectLock(inputs: InputReader): ObjectLockSetting | undefined {
  const modeText = inputs.optional('object-lock-mode');
  const daysText = inputs.optional('object-lock-days');
  if (!modeText && !daysText) return undefined;
  if (!modeText)
    throw inputError(
      'object-lock-mode',
      `is empty, but \`object-lock-days\` is set (${daysText})`,
      'Set `object-lock-mode` to `governance` (users with s3:BypassGovernanceRetention can still delete) or `compliance` (nobody can, not even the root account), or clear `object-lock-days`.',
    );
  const mode = (['governance', 'compliance'] as const).find((m) => m === modeText.toLowerCase()) as
    LockMode | undefined;
  if (!mode)
    throw inputError(
      'object-lock-mode',
      `"${modeText}" is not an Object Lock mode`,
      'Use `governance` (users with s3:BypassGovernanceRetention can still delete) or `compliance` (nobody can, not even the root account).',
    );
  if (!daysText)
    throw inputError(
      'object-lock-mode',
      `is \`${mode}\`, but \`object-lock-days\` is empty`,
      'Set `object-lock-days` to how many days each backup stays undeletable, e.g. `30`, or clear `object-lock-mode`.',
    );
  if (!/^\d+$/.test(daysText) || Number(daysText) < 1 || Number(daysText) > MAX_DAYS)
    throw inputError(
      'object-lock-days',
      `"${daysText}" is not a positive whole number of days`,
      `Give how many days each backup stays undeletable, counted from its start: a whole number from 1 to ${MAX_DAYS}, e.g. \`30\`.`,
    );
  return { mode, days: Number(daysText) };
}
