import { catalogue } from '../core/catalog.js';
import type { InputReader } from '../lib/inputs.js';
import { databasePrefix } from '../lib/keys.js';
import { formatBytes } from '../lib/log.js';
import type { RunIO } from '../lib/runtime.js';
import { ObjectStore } from '../lib/s3.js';
import { readS3Options } from './inputs/s3.js';

/** CLI `list`: every backup of a database with time, size, kind and last verification. */
export async function listCommand(inputs: InputReader, io: RunIO): Promise<void> {
  const s3 = readS3Options(inputs);
  const database = inputs.keyPart('database', { path: false, value: inputs.required('database') });
  const rows = await catalogue(ObjectStore.fromOptions(s3), s3.prefix, database);
  io.log.info(`${rows.length} backup(s) under s3://${s3.bucket}/${databasePrefix(s3.prefix, database)}`);
  for (const r of rows) {
    const state = r.complete ? (r.kind ?? '').padEnd(13) : r.broken ? 'BROKEN       ' : 'INCOMPLETE   ';
    const verified = r.verified ? `verified: ${r.verified}` : 'not verified';
    io.log.info(
      `  ${r.backupId}  ${state}  ${formatBytes(r.bytes).padStart(10)}  ${verified}${r.neonVerified ? `  neon pitr: ${r.neonVerified}` : ''}${r.broken ? `  (${r.broken})` : ''}`,
    );
  }
  io.result?.(rows);
}
