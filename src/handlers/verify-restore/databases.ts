import { inputError } from '../../lib/errors.js';
import { formatSeconds } from '../../lib/log.js';
import type { RunIO } from '../../lib/runtime.js';
import type { ObjectStore } from '../../lib/s3.js';
import {
  cell,
  failuresError,
  forEach,
  selectStreams,
  sumOf,
  type DatabaseSelection,
  type StreamFailure,
} from '../../core/multi-database.js';
import { runVerify, verifySummary, type VerifyOptions, type VerifyResult } from '../../core/verify.js';
import { verificationsOutput } from './outputs.js';

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
    (database) => runVerify({ ...o, database }, { store, log: io.log, cancel: io.cancel, run: io.run }),
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
  io.setOutput('rto-seconds', sumOf(results, (x) => x.r.rtoSeconds).toFixed(1));
  io.setOutput('rpo-seconds', Math.round(Math.max(0, ...results.map((x) => x.r.rpoSeconds))));
  io.setOutput(
    'tables-checked',
    sumOf(results, (x) => x.r.tablesChecked),
  );
  io.setOutput(
    'rows-checked',
    sumOf(results, (x) => x.r.rowsChecked),
  );
  await io.summary(verificationsSummary(streams.length, results, run.failures));
  if (failures.length) throw failuresError('Verification', streams.length, failures);
  io.log.info(`Verification of ${streams.length} stream(s) passed.`);
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
