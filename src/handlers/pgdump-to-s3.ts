import os from 'node:os';
import { parseRecipients } from '../lib/age.js';
import { parseDumpJobs } from '../lib/parallel-plan.js';
import { inputError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import type { Compression } from '../lib/manifest.js';
import { neonDirectHost } from '../lib/neon-endpoint.js';
import { parsePgUrl } from '../lib/pg-url.js';
import type { RunIO } from '../lib/runtime.js';
import { ObjectStore } from '../lib/s3.js';
import { readS3Options } from './inputs/s3.js';
import { backupSummary, runBackup, type BackupOptions } from '../core/backup.js';
import { backupsOutput } from '../core/multi-backup.js';
import type { DatabaseSelection } from '../core/multi-database.js';
import { backupDatabases } from './pgdump-to-s3/databases.js';
import { readDatabaseSelection } from './inputs/databases.js';
import { readObjectLock } from './pgdump-to-s3/object-lock.js';
import { requireBucketObjectLock } from '../lib/object-lock-store.js';

const REFUSED_CLASSES = ['GLACIER', 'DEEP_ARCHIVE'];
const STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'REDUCED_REDUNDANCY',
  'EXPRESS_ONEZONE',
  ...REFUSED_CLASSES,
];

/** Parses and validates pgdump-to-s3's inputs into the core's options. */
export function readBackupInputs(
  inputs: InputReader,
  io: RunIO,
): { options: BackupOptions; store: ObjectStore; selection?: DatabaseSelection } {
  const selection = readDatabaseSelection(inputs);
  const source = parsePgUrl('database-url', inputs.required('database-url'), io.log);
  if (inputs.oneOf('neon-direct-endpoint', ['auto', 'off'] as const) === 'auto') {
    const direct = neonDirectHost(source.host);
    if (direct) {
      io.log.info(
        `database-url names Neon's pooled endpoint ${source.host}; pg_dump and the snapshot connect to the direct endpoint ${direct} instead (set neon-direct-endpoint: off to keep the pooler)`,
      );
      source.host = direct;
    }
  }
  const s3 = readS3Options(inputs);
  const storageClass = inputs.oneOf('storage-class', STORAGE_CLASSES);
  if (REFUSED_CLASSES.includes(storageClass)) {
    throw inputError(
      'storage-class',
      `${storageClass} objects cannot be read without a restore request that takes hours`,
      'Use STANDARD, STANDARD_IA or GLACIER_IR, and move old backups to colder storage with a bucket lifecycle rule after they are verified.',
    );
  }
  const sseMode = inputs.oneOf('sse', ['AES256', 'aws:kms', 'none'] as const);
  const kmsKeyId = inputs.optional('sse-kms-key-id');
  if (kmsKeyId && sseMode !== 'aws:kms')
    throw inputError(
      'sse-kms-key-id',
      'is set but `sse` is not `aws:kms`',
      'Set `sse: aws:kms` or clear `sse-kms-key-id`.',
    );
  const compression = inputs.oneOf('compression', ['zstd', 'gzip', 'none'] as const) as Compression;
  const compressionLevel = inputs.int(
    'compression-level',
    compression === 'zstd' ? 1 : 0,
    compression === 'zstd' ? 19 : 9,
  );
  if (compression === 'none' && compressionLevel !== undefined && compressionLevel !== 0) {
    throw inputError(
      'compression-level',
      'is set but `compression` is `none`',
      'Clear `compression-level` or choose `zstd` or `gzip`.',
    );
  }
  const kind = inputs.string('kind');
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(kind)) {
    throw inputError(
      'kind',
      `"${kind}" is not a simple label`,
      'Use letters, digits, `-` and `_`, e.g. `scheduled` or `pre-migration`.',
    );
  }
  // With `databases`, each database's stream is named after it (streamName) and the URL's database only lists them.
  const database = selection
    ? (inputs.optional('database') ?? source.database)
    : inputs.keyPart('database', { path: false, value: inputs.optional('database') ?? source.database });
  const options: BackupOptions = {
    source,
    database,
    prefix: s3.prefix,
    kind,
    compression,
    compressionLevel,
    ageRecipients: parseRecipients('age-recipients', inputs.list('age-recipients')),
    excludeTableData: inputs.list('exclude-table-data'),
    schemas: inputs.list('schemas'),
    lockWaitTimeoutSeconds: inputs.seconds('lock-wait-timeout'),
    pgDumpPath: inputs.optional('pg-dump-path'),
    storageClass,
    sse: sseMode === 'none' ? undefined : { mode: sseMode, kmsKeyId },
    partSizeMiB: inputs.int('part-size-mb', 5, 512),
    s3Endpoint: s3.endpoint,
    globals: inputs.bool('globals'),
    objectLock: readObjectLock(inputs),
    jobs: parseDumpJobs(inputs.optional('jobs'), os.availableParallelism()),
  };
  return { options, store: ObjectStore.fromOptions(s3), selection };
}

export async function pgdumpToS3(inputs: InputReader, io: RunIO): Promise<void> {
  const { options, store, selection } = readBackupInputs(inputs, io);
  if (options.objectLock) {
    await requireBucketObjectLock(store, options.objectLock);
    io.log.info(
      `S3 Object Lock (${options.objectLock.mode}): every object of the backup is retained for ${options.objectLock.days} day(s) from its start`,
    );
  }
  if (selection) return backupDatabases(options, selection, store, io);
  const r = await runBackup(options, { store, log: io.log, cancel: io.cancel, run: io.run });
  io.setOutput('backups', backupsOutput([{ database: options.source.database, result: r }]));
  io.setOutput('backup-id', r.manifest.backupId);
  io.setOutput('manifest-key', r.manifestKey);
  io.setOutput('dump-key', r.dumpKey);
  io.setOutput('bytes', r.bytes);
  io.setOutput('sha256', r.sha256);
  io.setOutput('duration-seconds', r.durationSeconds.toFixed(1));
  io.setOutput('tables', r.manifest.tables.length);
  io.setOutput('rows', r.rows);
  await io.summary(backupSummary(r, store.bucket));
}
