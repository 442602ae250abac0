import { FaultError, UserError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Manifest } from '../lib/manifest.js';
import type { ObjectLockWrite } from '../lib/object-lock.js';
import { ObjectStore, type UploadOptions } from '../lib/s3.js';

/**
 * The manifest write failed and the store could not say whether it was applied: a manifest naming the dump may
 * exist, so the dump must stay. Thrown instead of the write's own error; the backup's cleanup keeps the dump.
 */
export class CompletionUnknown extends FaultError {}

/**
 * Writes the manifest, the step that makes a backup complete, and checks rather than assumes the outcome of a
 * failed write: a PutObject can be applied while its reply is lost (and the SDK's retries then fail).
 * - stored and byte-identical to what was written: the backup is complete ('read-back'; the lost reply is logged);
 * - not stored: the write's error is rethrown, and the caller may delete the dump;
 * - unknown (the read fails too) or different: CompletionUnknown, and the dump must be kept.
 */
export async function writeManifestChecked(
  store: ObjectStore,
  key: string,
  manifest: Manifest,
  sse: UploadOptions['sse'],
  log: Logger,
  lock?: ObjectLockWrite,
): Promise<'reply' | 'read-back'> {
  try {
    await store.putJson(key, manifest, sse, lock);
    return 'reply';
  } catch (e) {
    if (e instanceof UserError && e.reply?.status === 403) throw e; // refused: never applied
    const where = `s3://${store.bucket}/${key}`;
    let stored: Buffer | undefined;
    try {
      stored = await store.getBytes(key);
    } catch (readError) {
      throw new CompletionUnknown(
        `Writing the manifest ${where} failed (${errorMessage(e)}), and reading it back failed too (${errorMessage(readError)}), so whether the backup completed is unknown. Its dump was kept: if the manifest exists the backup is complete, otherwise prune-retention removes the incomplete backup after \`incomplete-grace\`. Re-running is safe.`,
        { cause: e, reply: (readError as FaultError).reply },
      );
    }
    if (stored === undefined) throw e;
    if (stored.toString('utf8') === ObjectStore.jsonBytes(manifest)) {
      log.warn(
        `The reply to the manifest write was lost (${errorMessage(e)}), but ${where} is stored and matches what was written: the backup is complete.`,
      );
      return 'read-back';
    }
    throw new CompletionUnknown(
      `Writing the manifest ${where} failed (${errorMessage(e)}), and a different manifest is stored there. The dump was kept; check the prefix for another writer.`,
      { cause: e },
    );
  }
}
