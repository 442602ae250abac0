/**
 * S3 Object Lock (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html): the settings and the
 * write parameters that give an object a retain-until date. The store's side (the bucket setting, an object's
 * retention) is in object-lock-store.ts; the integrity header such writes need, in content-md5.ts.
 */
import type { ObjectLockMode } from '@aws-sdk/client-s3';

export type LockMode = 'governance' | 'compliance';

/** What the inputs ask for: every object of a backup locked in `mode` for `days` from the backup's start. */
export interface ObjectLockSetting {
  mode: LockMode;
  days: number;
}

/** The retention one object is written with. */
export interface ObjectLockWrite {
  mode: LockMode;
  retainUntil: Date;
}

const DAY_MS = 86_400_000;

export function retainUntil(setting: ObjectLockSetting, from: Date): ObjectLockWrite {
  return { mode: setting.mode, retainUntil: new Date(from.getTime() + setting.days * DAY_MS) };
}

/** The PutObject / CreateMultipartUpload parameters of a lock (none without one). */
export function lockParams(lock: ObjectLockWrite | undefined): {
  ObjectLockMode?: ObjectLockMode;
  ObjectLockRetainUntilDate?: Date;
} {
  if (!lock) return {};
  return { ObjectLockMode: lock.mode.toUpperCase() as ObjectLockMode, ObjectLockRetainUntilDate: lock.retainUntil };
}

/**
 * A verification record's retention: its backup's (`objectLock` of the manifest, which verify-restore reads
 * anyway), so that a backup and the records of its tests expire together and retention removes them together.
 * None once that date has passed (S3 refuses a retain-until date in the past) or for a backup without a lock.
 */
export function recordLock(
  manifest: { objectLock?: { mode: LockMode; retainUntil: string } } | undefined,
  now: Date,
): ObjectLockWrite | undefined {
  const lock = manifest?.objectLock;
  if (!lock) return undefined;
  const until = new Date(lock.retainUntil);
  return until.getTime() > now.getTime() ? { mode: lock.mode, retainUntil: until } : undefined;
}
