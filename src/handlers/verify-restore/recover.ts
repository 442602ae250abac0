import os from 'node:os';
import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import { singleExpressionProblem } from '../../lib/row-diff.js';
import type { RunIO } from '../../lib/runtime.js';
import type { ObjectStore } from '../../lib/s3.js';
import { ON_CONFLICT, recoverSummary, runRecover, type RecoverOptions } from '../../core/recover.js';
import type { VerifyOptions } from '../../core/verify.js';

/** The inputs only `mode: recover` reads; refused here, before anything is downloaded. */
export function readRecoverInputs(inputs: InputReader, verify: VerifyOptions): RecoverOptions {
  if (verify.tables.length === 0) {
    throw inputError(
      'tables',
      'is required with `mode: recover`',
      'Name the tables to recover, schema-qualified, e.g. `public.customers, public.orders`.',
    );
  }
  const where = inputs.optional('where');
  const problem = where === undefined ? undefined : singleExpressionProblem(where);
  if (problem) {
    throw inputError(
      'where',
      `must be a single SQL expression, and ${problem}`,
      "Give one boolean condition on the backup's rows, e.g. `customer_id = 42` or `updated_at < '2026-11-21 09:00'`; nothing was downloaded.",
    );
  }
  return {
    verify,
    where,
    onConflict: inputs.oneOf('on-conflict', ON_CONFLICT),
    dryRun: inputs.bool('dry-run'),
    diffDir: process.env.RUNNER_TEMP || os.tmpdir(),
  };
}

export async function recoverRows(inputs: InputReader, io: RunIO, verify: VerifyOptions, store: ObjectStore) {
  const options = readRecoverInputs(inputs, verify);
  const r = await runRecover(options, { store, log: io.log, cancel: io.cancel, run: io.run });
  io.setOutput('backup-id', r.backupId);
  io.setOutput('status', 'passed');
  io.setOutput('rto-seconds', r.verify.rtoSeconds.toFixed(1));
  io.setOutput('rpo-seconds', Math.round(r.verify.rpoSeconds));
  io.setOutput('rows-inserted', r.rowsInserted);
  io.setOutput('rows-updated', r.rowsUpdated);
  io.setOutput('rows-unchanged', r.rowsUnchanged);
  io.setOutput('recovered-tables', r.recoveredTables.join(','));
  io.setOutput('diff-path', r.diffPath);
  await io.summary(recoverSummary(r));
  io.log.info(
    `${r.dryRun ? 'Dry run of the recovery' : 'Recovery'} from ${r.backupId} done: ${r.rowsInserted} row(s) ${r.dryRun ? 'to insert' : 'inserted'}, ${r.rowsUpdated} ${r.dryRun ? 'to update' : 'updated'}, ${r.rowsUnchanged} unchanged. Difference: ${r.diffPath}`,
  );
}
