/**
 * The second artifact of a backup: `pg_dumpall --globals-only --no-role-passwords` (roles, memberships, role
 * settings, tablespaces), zstd-compressed and encrypted like the dump. Optional by nature: a server that refuses
 * it (managed hosts that hide catalogs) costs a warning and a note in the manifest, never the backup.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { encryptStream } from '../lib/age.js';
import { DigestStream } from '../lib/digest.js';
import { errorMessage } from '../lib/errors.js';
import { formatBytes, type Logger } from '../lib/log.js';
import type { Artifact, GlobalsNote } from '../lib/manifest.js';
import { libpqEnv, urlWithoutPassword, type PgTarget } from '../lib/pg-url.js';
import type { Cancellation } from '../lib/cancel.js';
import { ChildWatch, type Processes } from '../lib/process.js';
import type { ObjectStore, UploadOptions } from '../lib/s3.js';

export const GLOBALS_LEVEL = 3;

export function globalsFileName(encrypted: boolean): string {
  return `globals.sql.zst${encrypted ? '.age' : ''}`;
}

export interface GlobalsResult {
  note: GlobalsNote;
  artifact?: Artifact;
}

/** Runs pg_dumpall beside `pgDumpPath` and uploads its output to `key`; never throws. */
export async function captureGlobals(
  p: {
    source: PgTarget;
    pgDumpPath: string;
    key: string;
    recipients: string[];
    upload: Omit<UploadOptions, 'partSizeBytes' | 'queueSize'>;
  },
  deps: { store: ObjectStore; log: Logger; processes: Processes; cancel?: Cancellation },
): Promise<GlobalsResult> {
  const pgDumpall = path.join(path.dirname(p.pgDumpPath), 'pg_dumpall');
  const failed = (error: string): GlobalsResult => {
    deps.log.warn(`Roles and other globals not stored (the backup itself is fine): ${error}`);
    return { note: { status: 'failed', error } };
  };
  if (!existsSync(pgDumpall)) return failed(`pg_dumpall not found beside pg_dump (${pgDumpall}).`);
  const out = await deps.processes
    .run(
      pgDumpall,
      [
        '--globals-only',
        '--no-role-passwords',
        '--no-password',
        `--dbname=${urlWithoutPassword(p.source)}`,
        // The database of the backup: the user can connect to it; `postgres` may be closed to it.
        `--database=${p.source.database}`,
      ],
      { env: libpqEnv(p.source) },
      deps.cancel,
    )
    .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (out.code !== 0) {
    return failed(
      out.stderr
        .split('\n')
        .filter((l) => l.startsWith('pg_dumpall: error:') || / ERROR: /.test(l))
        .join(' ')
        .trim() || `pg_dumpall exited with code ${out.code}: ${out.stderr.trim().split('\n').slice(-3).join(' ')}`,
    );
  }
  try {
    const compressed = await zstdCompress(Buffer.from(out.stdout, 'utf8'), deps.processes, deps.cancel);
    let stream: Readable = Readable.from([compressed]);
    if (p.recipients.length) stream = encryptStream(stream, p.recipients);
    const digest = new DigestStream();
    const body = new PassThrough();
    await Promise.all([
      pipeline(stream, digest, body),
      deps.store.uploadStream(p.key, body, { ...p.upload, partSizeBytes: 8 << 20, queueSize: 1 }),
    ]);
    const artifact: Artifact = {
      name: 'globals',
      key: p.key,
      bytes: digest.bytes,
      sha256: digest.sha256(),
      format: 'sql',
      compression: 'zstd',
      compressionLevel: GLOBALS_LEVEL,
      encryption: p.recipients.length ? { scheme: 'age', recipients: p.recipients } : null,
    };
    deps.log.info(`Stored the roles and other globals (pg_dumpall --globals-only): ${formatBytes(artifact.bytes)}`);
    return { note: { status: 'stored' }, artifact };
  } catch (e) {
    return failed(`storing ${p.key} failed: ${errorMessage(e)}`);
  }
}

/** zstd from Node's zlib where it has it (22.15+), else the zstd binary. */
async function zstdCompress(data: Buffer, processes: Processes, cancel?: Cancellation): Promise<Buffer> {
  const z = zlib as unknown as { zstdCompress?: (b: Buffer, cb: (e: Error | null, r: Buffer) => void) => void };
  if (z.zstdCompress) {
    const compress = z.zstdCompress;
    return new Promise((resolve, reject) => compress(data, (e, r) => (e ? reject(e) : resolve(r))));
  }
  const child = processes.spawn('zstd', ['-q', '-c', `-${GLOBALS_LEVEL}`], { stdio: ['pipe', 'pipe', 'pipe'] }, cancel);
  const watch = new ChildWatch('zstd', child);
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => chunks.push(c));
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(data);
  await watch.succeeded();
  return Buffer.concat(chunks);
}
