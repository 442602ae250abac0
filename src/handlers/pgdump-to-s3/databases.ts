import type { RunIO } from '../../lib/runtime.js';
import type { ObjectStore } from '../../lib/s3.js';
import type { BackupOptions } from '../../core/backup.js';
import { backupsOutput, backupsSummary, runBackups } from '../../core/multi-backup.js';
import { failuresError, sumOf, type DatabaseSelection } from '../../core/multi-database.js';

/** pgdump-to-s3 with `databases`: one stream per database, one summary, every failure named at the end. */
export async function backupDatabases(
  base: BackupOptions,
  selection: DatabaseSelection,
  store: ObjectStore,
  io: RunIO,
): Promise<void> {
  const r = await runBackups(base, selection, { store, log: io.log, cancel: io.cancel, run: io.run });
  io.setOutput('backups', backupsOutput(r.results));
  const only = r.plan.selected.length + r.plan.refused.length === 1 ? r.results[0]?.result : undefined;
  // With several databases the per-backup outputs have no single value (see `backups`); the totals still do.
  io.setOutput('backup-id', only?.manifest.backupId ?? '');
  io.setOutput('manifest-key', only?.manifestKey ?? '');
  io.setOutput('dump-key', only?.dumpKey ?? '');
  io.setOutput('sha256', only?.sha256 ?? '');
  io.setOutput(
    'bytes',
    sumOf(r.results, (x) => x.result.bytes),
  );
  io.setOutput(
    'tables',
    sumOf(r.results, (x) => x.result.manifest.tables.length),
  );
  io.setOutput(
    'rows',
    sumOf(r.results, (x) => x.result.rows),
  );
  io.setOutput('duration-seconds', (only?.durationSeconds ?? r.durationSeconds).toFixed(1));
  await io.summary(backupsSummary(r, store.bucket));
  if (r.failures.length) throw failuresError('Backup', r.failures.length + r.results.length, r.failures);
}
