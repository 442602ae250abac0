import { errorMessage, replyOf } from '../lib/errors.js';
import { classifyS3, type DeleteFailure, type ObjectStore } from '../lib/s3.js';
import type { BackupEntry } from './catalog.js';

/**
 * Deletes whole backups in the one safe order (docs/FORMAT.md, "Deletion order"):
 * 1. every `manifest.json`, in requests of their own, so each backup stops being complete at once;
 * 2. one listing of the database prefix confirms which manifests are gone;
 * 3. only then the rest of those backups (dump, verification records, anything written meanwhile).
 * A backup whose manifest is not confirmed gone keeps all its other objects: a manifest never outlives its dump.
 */
export async function deleteBackups(
  store: ObjectStore,
  dbPrefix: string,
  entries: BackupEntry[],
): Promise<DeleteFailure[]> {
  if (entries.length === 0) return [];
  const failures: DeleteFailure[] = [];
  const manifests = entries.flatMap((e) => (e.manifestKey ? [e.manifestKey] : []));
  failures.push(...(await store.deleteKeys(manifests)));

  let present: string[];
  try {
    present = (await store.listAll(dbPrefix)).map((o) => o.key);
  } catch (e) {
    const reply = replyOf(e);
    const kind = reply ? classifyS3(reply) : 'other';
    for (const m of manifests.filter((k) => !failures.some((f) => f.key === k)))
      failures.push({
        key: m,
        error: `deleted, but the listing that confirms it failed (${errorMessage(e)}): the rest of the backup was kept`,
        kind,
      });
    return failures;
  }
  const stillThere = new Set(present);
  const rest: string[] = [];
  for (const e of entries) {
    if (e.manifestKey && stillThere.has(e.manifestKey)) {
      if (!failures.some((f) => f.key === e.manifestKey))
        failures.push({
          key: e.manifestKey,
          error: 'still present after its deletion: the rest was kept',
          kind: 'other',
        });
      continue;
    }
    const backupPrefix = `${dbPrefix}${e.backupId}/`;
    rest.push(...present.filter((k) => k.startsWith(backupPrefix)));
  }
  failures.push(...(await store.deleteKeys(rest)));
  return failures;
}
