import type { RunIO } from '../../lib/runtime.js';
import type { VerificationOutcome, VerifyResult } from '../../core/verify.js';

/** The outputs of a verification of one stream, the same for an S3 restore and a Neon point in time. */
export function setVerificationOutputs(io: RunIO, stream: string, r: VerificationOutcome): void {
  io.setOutput('verifications', verificationsOutput([{ stream, r }]));
  io.setOutput('backup-id', r.backupId);
  io.setOutput('status', r.status);
  io.setOutput('rto-seconds', r.rtoSeconds.toFixed(1));
  io.setOutput('rpo-seconds', Math.round(r.rpoSeconds));
  io.setOutput('tables-checked', r.tablesChecked);
  io.setOutput('rows-checked', r.rowsChecked);
  io.setOutput('verification-key', r.verificationKey ?? '');
}

/** The `verifications` output: one object per stream verified. */
export function verificationsOutput(
  results: {
    stream: string;
    r: Pick<VerifyResult, 'backupId' | 'status' | 'rtoSeconds' | 'rpoSeconds' | 'verificationKey'>;
  }[],
): string {
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
