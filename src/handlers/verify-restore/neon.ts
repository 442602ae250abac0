import { inputError, UserError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import type { RunIO } from '../../lib/runtime.js';
import { ObjectStore } from '../../lib/s3.js';
import { readS3Options } from '../inputs/s3.js';
import { readChecksFile } from '../../lib/checks-file.js';
import { neonVerifySummary, runNeonVerify } from '../../core/neon-verify.js';
import { neonApi, readNeonAccess, readPointInTime } from '../inputs/neon.js';
import { setVerificationOutputs } from './outputs.js';

/** verify-restore with `source: neon`: Neon's point-in-time history checked against an S3 backup's manifest. */
export async function neonVerifyAction(inputs: InputReader, io: RunIO): Promise<void> {
  const mode = inputs.oneOf('mode', ['verify', 'restore', 'recover'] as const);
  if (mode !== 'verify')
    throw inputError(
      'source',
      `\`neon\` only verifies (\`mode\` is \`${mode}\`)`,
      'Restore a Neon point in time with the neon-snapshot action (`mode: restore` or `restore-snapshot`), or set `source: s3`.',
    );
  if (inputs.optional('databases'))
    throw inputError(
      'databases',
      'does not apply to `source: neon`',
      'Verify one stream against Neon at a time: set `database` and clear `databases`.',
    );
  const s3 = readS3Options(inputs);
  const database = inputs.keyPart('database', { path: false, value: inputs.required('database') });
  const checks = inputs.optional('checks-sql');
  const checksSql = checks ? readChecksFile('checks-sql', checks, io.run.workspace ?? process.cwd()) : undefined;
  const timeoutSeconds = inputs.seconds('timeout');
  const point = readPointInTime(inputs);
  const access = readNeonAccess(inputs);
  const neon = neonApi(access, io, timeoutSeconds);
  const { projectId } = access;
  const r = await runNeonVerify(
    {
      prefix: s3.prefix,
      database,
      backupId: inputs.string('backup-id'),
      projectId,
      branch: inputs.optional('branch'),
      neonDatabase: inputs.optional('neon-database'),
      role: inputs.string('neon-role'),
      checksSql,
      maxAgeSeconds: inputs.durationSeconds('max-age'),
      timeoutSeconds,
      ...point,
    },
    { store: ObjectStore.fromOptions(s3), neon, log: io.log, cancel: io.cancel, run: io.run },
  );
  setVerificationOutputs(io, database, r);
  await io.summary(neonVerifySummary(r));
  if (r.status === 'failed')
    throw new UserError(
      `Neon point-in-time verification of backup ${r.backupId} failed:\n- ${r.failures.join('\n- ')}`,
    );
  io.log.info(
    `Neon point-in-time verification of ${r.backupId} passed: RTO ${r.rtoSeconds.toFixed(1)} s, ${r.tablesChecked} tables, ${r.rowsChecked} rows.`,
  );
}
