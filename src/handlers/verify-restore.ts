import os from 'node:os';
import { parseIdentities } from '../lib/age.js';
import { inputError, UserError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import { parsePgUrl } from '../lib/pg-url.js';
import type { RunIO } from '../lib/runtime.js';
import { ObjectStore } from '../lib/s3.js';
import { readS3Options } from './inputs/s3.js';
import { parseQualifiedName } from '../lib/toc.js';
import { readChecksFile } from '../lib/checks-file.js';
import { recoverRows } from './verify-restore/recover.js';
import { runVerify, verifySummary, type VerifyOptions } from '../core/verify.js';
import { RESTORE_STRATEGIES } from '../core/restore-strategy.js';
import type { DatabaseSelection } from '../core/multi-database.js';
import { verifyStreams } from './verify-restore/databases.js';
import { setVerificationOutputs } from './verify-restore/outputs.js';
import { readDatabaseSelection } from './inputs/databases.js';
import { neonVerifyAction } from './verify-restore/neon.js';

export function readVerifyInputs(
  inputs: InputReader,
  io: RunIO,
): { options: VerifyOptions; store: ObjectStore; selection?: DatabaseSelection } {
  const selection = readDatabaseSelection(inputs);
  const s3 = readS3Options(inputs);
  const target = parsePgUrl('target-url', inputs.required('target-url'), io.log);
  const identity = inputs.optional('age-identity');
  const mode = inputs.oneOf('mode', ['verify', 'restore', 'recover'] as const);
  const tables = inputs.list('tables').map((t) => {
    const q = parseQualifiedName(t);
    if (!q)
      throw inputError(
        'tables',
        `"${t}" is not a table name`,
        'Use schema-qualified names such as `public.visits`, one per line or comma-separated.',
      );
    return q;
  });
  if (tables.length && mode === 'verify') {
    throw inputError(
      'tables',
      'only applies to `mode: restore`',
      'Verification restores every table; clear `tables`, or set `mode: restore`.',
    );
  }
  if (mode !== 'recover' && inputs.optional('where')) {
    throw inputError('where', 'only applies to `mode: recover`', 'Clear `where`, or set `mode: recover`.');
  }
  const checks = inputs.optional('checks-sql');
  const strategyInput = inputs.optional('restore-strategy');
  if (strategyInput && mode !== 'restore') {
    throw inputError(
      'restore-strategy',
      'only applies to `mode: restore`',
      'Verification and recovery always restore into a scratch database; clear `restore-strategy`, or set `mode: restore`.',
    );
  }
  // swap replaces the whole database, so a table restore defaults to in-place (one transaction).
  const strategy = strategyInput
    ? inputs.oneOf('restore-strategy', RESTORE_STRATEGIES)
    : tables.length
      ? 'in-place'
      : 'swap';
  if (mode === 'restore' && strategy === 'swap' && tables.length) {
    throw inputError(
      'restore-strategy',
      '`swap` replaces the whole database and cannot be combined with `tables`',
      'Use `in-place` (the tables are restored in one transaction) or `new-database` (restore those tables into a new database).',
    );
  }
  const newDatabase = inputs.optional('new-database');
  if (newDatabase && strategy !== 'new-database') {
    throw inputError(
      'new-database',
      'only applies to `restore-strategy: new-database`',
      'Clear it, or set `restore-strategy: new-database`.',
    );
  }
  if (newDatabase && Buffer.byteLength(newDatabase) > 63) {
    throw inputError(
      'new-database',
      `"${newDatabase}" is longer than 63 bytes`,
      'Postgres truncates longer names; choose a shorter one.',
    );
  }
  const options: VerifyOptions = {
    prefix: s3.prefix,
    // With `databases`, each stream in turn (verifyStreams).
    database: selection ? '' : inputs.keyPart('database', { path: false, value: inputs.required('database') }),
    backupId: inputs.string('backup-id'),
    target,
    ageIdentities: identity ? parseIdentities('age-identity', identity) : [],
    mode,
    confirm: inputs.optional('confirm'),
    clean: inputs.bool('clean'),
    tables,
    checksSql: checks ? readChecksFile('checks-sql', checks, io.run.workspace ?? process.cwd()) : undefined,
    maxAgeSeconds: inputs.durationSeconds('max-age'),
    jobs: inputs.int('jobs', 1, 64) ?? Math.max(1, os.availableParallelism()),
    pgRestorePath: inputs.optional('pg-restore-path'),
    createRoles: inputs.oneOf('create-roles', ['missing', 'none'] as const),
    tempDir: process.env.RUNNER_TEMP || undefined,
    strategy,
    newDatabase,
    keepFailed: inputs.bool('keep-failed'),
    staleGraceSeconds: inputs.seconds('stale-grace'),
  };
  return { options, store: ObjectStore.fromOptions(s3), selection };
}

/**
 * The modes read different inputs (`where` and `on-conflict` only for recover, Neon's only for `source: neon`), so
 * the handler picks the mode first and reads that mode's typed request; each mode has one core entry (runVerify,
 * runRecover, runNeonVerify, and runVerify per stream for `databases`).
 */
export async function verifyRestore(inputs: InputReader, io: RunIO): Promise<void> {
  try {
    if (inputs.oneOf('source', ['s3', 'neon'] as const) === 'neon') return await neonVerifyAction(inputs, io);
    const { options, store, selection } = readVerifyInputs(inputs, io);
    if (options.mode === 'recover') {
      if (selection)
        throw inputError(
          'databases',
          'does not apply to `mode: recover`',
          'Recover the rows of one stream at a time: set `database` and clear `databases`.',
        );
      return await recoverRows(inputs, io, options, store);
    }
    if (selection) return await verifyStreams(options, selection, store, io);
    const r = await runVerify(options, { store, log: io.log, cancel: io.cancel, run: io.run });
    setVerificationOutputs(io, options.database, r);
    for (const [k, v] of Object.entries(r.destination?.outputs ?? {})) io.setOutput(k, v);
    await io.summary(verifySummary(r));
    if (r.status === 'failed') {
      throw new UserError(
        `${options.mode === 'restore' ? 'Restore' : 'Verification'} of backup ${r.backupId} failed:\n- ${r.failures.join('\n- ')}`,
      );
    }
    io.log.info(
      `${options.mode === 'restore' ? 'Restore' : 'Verification'} of ${r.backupId} passed: RTO ${r.rtoSeconds.toFixed(1)} s, RPO ${Math.round(r.rpoSeconds)} s, ${r.tablesChecked} tables, ${r.rowsChecked} rows.`,
    );
  } catch (e) {
    io.setOutput('status', 'failed');
    throw e;
  }
}
