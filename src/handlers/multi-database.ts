import { writeFileSync } from 'node:fs';
import { inputError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import { formatBytes, formatSeconds } from '../lib/log.js';
import type { RunIO } from '../lib/runtime.js';
import type { ObjectStore } from '../lib/s3.js';
import type { BackupOptions } from '../core/backup.js';
import {
  backupsOutput,
  backupsSummary,
  cell,
  failuresError,
  forEach,
  runBackups,
  selectStreams,
  type DatabaseSelection,
  type StreamFailure,
} from '../core/multi-database.js';
import { pruneS3, pruneSummary, type PruneReport, type PruneSettings } from '../core/prune.js';
import { runVerify, verifySummary, type VerifyOptions, type VerifyResult } from '../core/verify.js';

/**
 * `databases` and `exclude-databases`, shared by pgdump-to-s3, verify-restore and prune-retention. Undefined when
 * `databases` is empty: the single-database behaviour of `database`, unchanged.
 */
export function readDatabaseSelection(inputs: InputReader): DatabaseSelection | undefined {
  const names = inputs.list('databases');
  const exclude = inputs.list('exclude-databases');
  if (names.length === 0) {
    if (exclude.length)
      throw inputError(
        'exclude-databases',
        'is set but `databases` is empty',
        'Set `databases: all` to back up every database except these, or clear `exclude-databases`.',
      );
    return undefined;
  }
  if (inputs.optional('database')) {
    throw inputError(
      'databases',
      'is set together with `database`',
      '`database` names the one stream of a single-database run; with `databases` each database is its own stream, named after it. Clear one of the two.',
    );
  }
  if (names.includes('all')) {
    if (names.length > 1)
      throw inputError(
        'databases',
        '`all` is combined with database names',
        'Use `all` alone (and leave databases out with `exclude-databases`), or list the databases without `all`.',
      );
    return { all: true, exclude };
  }
  if (exclude.length)
    throw inputError(
      'exclude-databases',
      'only applies to `databases: all`',
      'Leave the databases out of the `databases` list instead, or set `databases: all`.',
    );
  return { all: false, names: [...new Set(names)] };
}

/** pgdump-to-s3 with `databases`: one stream per database, one summary, every failure named at the end. */
export async function backupDatabases(
  base: BackupOptions,
  selection: DatabaseSelection,
  store: ObjectStore,
  io: RunIO,
): Promise<void> {
  const r = await runBackups(base, selection, { store, log: io.log });
  io.setOutput('backups', backupsOutput(r.results));
  const only = r.plan.selected.length + r.plan.refused.length === 1 ? r.results[0]?.result : undefined;
  // With several databases the per-backup outputs have no single value (see `backups`); the totals still do.
  io.setOutput('backup-id', only?.manifest.backupId ?? '');
  io.setOutput('manifest-key', only?.manifestKey ?? '');
  io.setOutput('dump-key', only?.dumpKey ?? '');
  io.setOutput('sha256', only?.sha256 ?? '');
  io.setOutput(
    'bytes',
    r.results.reduce((s, x) => s + x.result.bytes, 0),
  );
  io.setOutput(
    'tables',
    r.results.reduce((s, x) => s + x.result.manifest.tables.length, 0),
  );
  io.setOutput(
    'rows',
    r.results.reduce((s, x) => s + x.result.rows, 0),
  );
  io.setOutput('duration-seconds', (only?.durationSeconds ?? r.durationSeconds).toFixed(1));
  await io.summary(backupsSummary(r, store.bucket));
  if (r.failures.length) throw failuresError('Backup', r.failures.length + r.results.length, r.failures);
}

function refuseForSeveral(o: VerifyOptions): void {
  if (o.mode === 'restore')
    throw inputError(
      'databases',
      'only applies to `mode: verify`',
      'A restore writes one backup into the database of `target-url`: restore each database in its own step with `database`.',
    );
  if (o.backupId !== 'latest')
    throw inputError(
      'backup-id',
      `"${o.backupId}" names one backup, but \`databases\` selects several streams`,
      'Use `latest` (the newest complete backup of each stream), or verify that backup with `database`.',
    );
  if (o.checksSql)
    throw inputError(
      'checks-sql',
      'is written for one database, but `databases` selects several',
      "Verify a database that has its own checks in a separate step with `database` and that database's `checks-sql`.",
    );
}

/** verify-restore with `databases`: the newest backup of each stream verified in turn, one summary. */
export async function verifyStreams(
  o: VerifyOptions,
  selection: DatabaseSelection,
  store: ObjectStore,
  io: RunIO,
): Promise<void> {
  refuseForSeveral(o);
  const streams = await selectStreams(store, o.prefix, selection);
  io.log.info(`Verifying ${streams.length} stream(s): ${streams.join(', ')}`);
  const run = await forEach(
    streams,
    io.log,
    (s) => `Verification of stream ${s}`,
    (database) => runVerify({ ...o, database }, { store, log: io.log }),
  );
  const results = run.done.map(({ item, value }) => ({ stream: item, r: value }));
  const failures: StreamFailure[] = [
    ...results
      .filter((x) => x.r.status === 'failed')
      .map((x) => ({ name: x.stream, error: x.r.failures.join('; ') || 'failed' })),
    ...run.failures,
  ];
  const only = streams.length === 1 ? results[0]?.r : undefined;
  io.setOutput('verifications', verificationsOutput(results));
  io.setOutput('status', failures.length ? 'failed' : 'passed');
  io.setOutput('backup-id', only?.backupId ?? '');
  io.setOutput('verification-key', only?.verificationKey ?? '');
  // Restoring every stream, one after another, takes the sum; the oldest snapshot is the RPO that matters.
  io.setOutput('rto-seconds', results.reduce((s, x) => s + x.r.rtoSeconds, 0).toFixed(1));
  io.setOutput('rpo-seconds', Math.round(Math.max(0, ...results.map((x) => x.r.rpoSeconds))));
  io.setOutput(
    'tables-checked',
    results.reduce((s, x) => s + x.r.tablesChecked, 0),
  );
  io.setOutput(
    'rows-checked',
    results.reduce((s, x) => s + x.r.rowsChecked, 0),
  );
  await io.summary(verificationsSummary(streams.length, results, run.failures));
  if (failures.length) throw failuresError('Verification', streams.length, failures);
  io.log.info(`Verification of ${streams.length} stream(s) passed.`);
}

/** The `verifications` output: one object per stream verified. */
export function verificationsOutput(results: { stream: string; r: VerifyResult }[]): string {
  return JSON.stringify(
    results.map(({ stream, r }) => ({
      database: stream,
      'backup-id': r.backupId,
      status: r.status,
      'rto-seconds': Number(r.rtoSeconds.toFixed(1)),
      'rpo-seconds': Math.round(r.rpoSeconds),
      'verification-key': r.verificationKey ?? '',
    })),
  );
}

function verificationsSummary(
  total: number,
  results: { stream: string; r: VerifyResult }[],
  errors: StreamFailure[],
): string {
  const passed = results.filter((x) => x.r.status === 'passed').length;
  const lines = [
    `## Verification of ${total} stream(s): ${passed} passed${total - passed ? `, ${total - passed} failed` : ''}`,
    '',
    '| Stream | Database | Result | Backup id | RTO | RPO | Tables | Rows |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { stream, r } of results)
    lines.push(
      `| \`${stream}\` | \`${cell(r.manifest?.source.database ?? '')}\` | ${r.status === 'passed' ? '✅ passed' : `❌ failed: ${cell(r.failures.join('; '))}`} | \`${r.backupId}\` | ${formatSeconds(r.rtoSeconds)} | ${formatSeconds(r.rpoSeconds)} | ${r.tablesChecked} | ${r.rowsChecked.toLocaleString('en-US')} |`,
    );
  for (const f of errors) lines.push(`| \`${f.name}\` | | ❌ failed: ${cell(f.error)} | | | | | |`);
  lines.push('');
  for (const { r } of results) lines.push(verifySummary(r).replace(/^## /gm, '### '));
  return lines.join('\n');
}

/** prune-retention with `databases`: each stream pruned under its own `<prefix>/<stream>/`, one summary. */
export async function pruneStreams(
  store: ObjectStore,
  prefix: string,
  selection: DatabaseSelection,
  settings: PruneSettings,
  io: RunIO,
): Promise<void> {
  const streams = await selectStreams(store, prefix, selection);
  io.log.info(`Applying retention to ${streams.length} stream(s): ${streams.join(', ')}`);
  const planFile = (s: string) => settings.planFile.replace(/\.json$/, `-${s}.json`);
  const run = await forEach(
    streams,
    io.log,
    (s) => `Retention of stream ${s}`,
    (database) => pruneS3(store, { prefix, database, ...settings, planFile: planFile(database) }, { log: io.log }),
  );
  const reports = run.done.map(({ item, value }) => ({ stream: item, report: value }));
  writeFileSync(
    settings.planFile,
    JSON.stringify(
      reports.map((x) => ({ stream: x.stream, ...x.report })),
      null,
      2,
    ) + '\n',
  );
  io.setOutput(
    'kept',
    reports.reduce((s, x) => s + x.report.keep.length, 0),
  );
  io.setOutput(
    'deleted',
    reports.reduce((s, x) => s + x.report.remove.length, 0),
  );
  io.setOutput(
    'freed-bytes',
    reports.reduce((s, x) => s + x.report.freedBytes, 0),
  );
  io.setOutput('plan-file', settings.planFile);
  const failures: StreamFailure[] = [
    ...run.failures,
    ...reports
      .filter((x) => x.report.failures.length)
      .map((x) => ({
        name: x.stream,
        error: `${x.report.failures.length} deletion(s) failed, e.g. ${x.report.failures[0]!.id}: ${x.report.failures[0]!.error}. Check s3:DeleteObject and re-run; retention is idempotent.`,
      })),
  ];
  await io.summary(pruneStreamsSummary(settings.dryRun, reports, run.failures));
  if (failures.length) throw failuresError('Retention', streams.length, failures);
}

function pruneStreamsSummary(
  dryRun: boolean,
  reports: { stream: string; report: PruneReport }[],
  errors: StreamFailure[],
): string {
  const lines = [
    `## Retention over ${reports.length + errors.length} stream(s)${dryRun ? ' (dry run: nothing deleted)' : ''}`,
    '',
    `| Stream | Kept | ${dryRun ? 'Would delete' : 'Deleted'} | Freed | Failures |`,
    '|---|---|---|---|---|',
  ];
  for (const { stream, report } of reports)
    lines.push(
      `| \`${stream}\` | ${report.keep.length} | ${report.remove.length} | ${formatBytes(report.freedBytes)} | ${report.failures.length || ''} |`,
    );
  for (const f of errors) lines.push(`| \`${f.name}\` | | | | ❌ ${cell(f.error)} |`);
  lines.push('');
  for (const { report } of reports) lines.push(pruneSummary(report).replace(/^## /gm, '### '));
  return lines.join('\n');
}
