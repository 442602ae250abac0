/**
 * Which backups that retention is about to delete S3 Object Lock still protects. Decided from what the store
 * holds (GetObjectRetention of every object of the backup), never from a delete the store refused: on a versioned
 * bucket S3 accepts a delete of a locked object (it adds a delete marker and keeps the data), so a refusal cannot
 * be relied on, and a backup whose manifest went but whose dump stayed would be left incomplete.
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { mapLimit } from '../lib/map-limit.js';
import type { LockMode } from '../lib/object-lock.js';
import { bucketObjectLock, objectRetention } from '../lib/object-lock-store.js';
import type { ObjectStore } from '../lib/s3.js';
import type { BackupEntry } from './catalog.js';

export interface BackupLock {
  mode: LockMode;
  /** The latest retain-until date among the backup's objects that are still locked. */
  retainUntil: Date;
}

export interface LockSurvey {
  locked: Map<string, BackupLock>;
  /** Backups whose retention could not be read: left in place, reported as failures. */
  unreadable: Map<string, Error>;
}

export async function findLockedBackups(
  store: ObjectStore,
  entries: BackupEntry[],
  now: Date,
  log: Logger,
): Promise<LockSurvey> {
  const survey: LockSurvey = { locked: new Map(), unreadable: new Map() };
  if (entries.length === 0) return survey;
  const state = await bucketObjectLock(store);
  if (state === 'denied')
    log.warn(
      `The credentials may not read whether bucket "${store.bucket}" has S3 Object Lock (s3:GetBucketObjectLockConfiguration), so locked backups cannot be told apart before deleting; allow it (and s3:GetObjectRetention) to have them reported as "locked until <date>".`,
    );
  if (state !== 'enabled') return survey;
  const objects = entries.flatMap((e) => e.keys.map((key) => ({ entry: e, key })));
  const retentions = await mapLimit(objects, 8, async ({ key }) => {
    try {
      return { retention: await objectRetention(store, key) };
    } catch (e) {
      return { error: e as Error };
    }
  });
  objects.forEach(({ entry }, i) => {
    const r = retentions[i]!;
    if (r.error) {
      if (!survey.unreadable.has(entry.backupId)) survey.unreadable.set(entry.backupId, r.error);
      return;
    }
    if (!r.retention || r.retention.retainUntil.getTime() <= now.getTime()) return;
    const known = survey.locked.get(entry.backupId);
    if (!known || r.retention.retainUntil > known.retainUntil) survey.locked.set(entry.backupId, r.retention);
  });
  for (const id of survey.unreadable.keys()) survey.locked.delete(id);
  return survey;
}

export function lockNote(lock: BackupLock): string {
  return `locked until ${lock.retainUntil.toISOString()} (S3 Object Lock, ${lock.mode} mode)`;
}

export function unreadableNote(e: Error): string {
  return `its Object Lock retention could not be read, so it was left in place: ${errorMessage(e)}`;
}
