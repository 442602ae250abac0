import type { ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync, rmSync } from 'node:fs';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream } from '../lib/age.js';
import { DigestStream } from '../lib/digest.js';
import { UserError } from '../lib/errors.js';
import { formatBytes } from '../lib/log.js';
import type { Artifact, Manifest } from '../lib/manifest.js';
import type { Cancellation } from '../lib/cancel.js';
import { ChildFailure, ChildWatch, childOutOfSpace, type Processes } from '../lib/process.js';
import type { ObjectStore } from '../lib/s3.js';
import { restorePlan } from '../lib/parallel-plan.js';

/** Thrown when the stored bytes are not the ones the manifest lists: a verdict on the backup. */
export class ChecksumMismatch extends Error {}

/** Thrown when decrypting or decompressing failed although the stored bytes were intact. */
export class DecodeFailed extends Error {}

/**
 * The size of an artifact once decrypted and decompressed (the file pg_restore reads), as far as the manifest
 * tells: `uncompressedBytes` when the writer recorded it; otherwise the stored size for what is not compressed by
 * us (gzip is pg_dump's own, read as it is), and undefined for zstd (unknown before it is decompressed).
 */
export function restorableBytes(a: Artifact): number | undefined {
  if (a.uncompressedBytes !== undefined) return a.uncompressedBytes;
  if (a.compression === 'zstd') return undefined;
  return a.bytes;
}

export interface DiskPlan {
  /** Bytes of local disk the verification needs at its peak. */
  needBytes: number;
  /** False when the need is a lower bound (an older backup that did not record its decompressed size). */
  exact: boolean;
  /** What is kept locally, for messages. */
  what: string;
  /** A multi-artifact backup (`jobs` > 1): the data is streamed, only the small sections are kept. */
  multi?: boolean;
}

/**
 * Peak local disk of verifying a backup (docs/PERFORMANCE.md, "Disk"). A single-artifact backup keeps one file:
 * the decompressed dump, written while the stored bytes stream in and are checksummed (never the stored copy as
 * well). A multi-artifact backup keeps only its pre-data and post-data archives (the data streams from S3 into
 * pg_restore). The globals script is small and counted too.
 */
export function diskPlan(manifest: Manifest): DiskPlan {
  const plan = restorePlan(manifest);
  const globalsBytes = plan.globals ? (restorableBytes(plan.globals) ?? plan.globals.bytes * 20) : 0;
  const kept = plan.dump ? [plan.dump] : [plan.preData!, plan.postData!];
  const sizes = kept.map(restorableBytes);
  return {
    needBytes: kept.reduce((n, a, i) => n + (sizes[i] ?? a.bytes), 0) + globalsBytes,
    exact: sizes.every((b) => b !== undefined),
    what: plan.dump ? 'the decompressed dump' : 'the decompressed pre-data and post-data archives',
    ...(plan.dump ? {} : { multi: true }),
  };
}

/** Fails before any download when the disk under `dir` cannot hold what the verification keeps there. */
export function checkFreeSpace(dir: string, plan: DiskPlan, freeBytes: number | undefined): void {
  if (freeBytes === undefined || plan.needBytes <= freeBytes) return;
  const wayOut = plan.multi
    ? 'Free space'
    : 'Back up with `jobs: 2` or more (pgdump-to-s3) so that verify-restore streams the data into pg_restore without a local copy, or free space';
  throw new UserError(
    `Not enough free disk for this verification: it keeps ${plan.what} in ${dir}, ${plan.exact ? '' : 'at least '}${formatBytes(plan.needBytes)}, and only ${formatBytes(freeBytes)} is free there. Nothing was downloaded. ${wayOut}, or point RUNNER_TEMP (the CLI: TMPDIR) at a larger disk, e.g. a larger runner or a mounted volume.`,
  );
}

/** The disk filled up: Node's own write (ENOSPC), or zstd writing the file itself and saying so on stderr. */
export const noSpace = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOSPC' || childOutOfSpace(e);

/** Where the decoded (decrypted, decompressed) archive goes: a file, or a child's stdin (pg_restore reading `-`). */
export type DecodeTarget = { file: string } | { stdin: ChildProcess };

/**
 * Downloads an artifact into `file` as pg_restore reads it: the stored bytes are checksummed while they stream
 * through age and `zstd -d` (which writes the file itself), so the stored copy is never kept on disk. When the
 * checksum or the size differs from the manifest's, the file is deleted and ChecksumMismatch thrown; a decoding
 * error on intact bytes is DecodeFailed (or the identity's UserError). Nothing is restored before this returns.
 */
export async function fetchArtifact(
  store: ObjectStore,
  artifact: Artifact,
  file: string,
  identities: string[],
  processes: Processes,
  cancel?: Cancellation,
): Promise<void> {
  try {
    await streamArtifact(store, artifact, { file }, identities, processes, cancel);
  } catch (e) {
    rmSync(file, { force: true });
    throw e;
  }
}

/**
 * Streams an artifact's stored bytes through the checksum, age and `zstd -d` into `target`. With a child's stdin
 * the decoded bytes go from zstd to the child through an OS pipe, never through Node or the disk; the checksum
 * is known only once the last byte went through, so a ChecksumMismatch then means the child read altered data
 * and what it wrote must be thrown away (the caller drops its database).
 */
export async function streamArtifact(
  store: ObjectStore,
  artifact: Artifact,
  target: DecodeTarget,
  identities: string[],
  processes: Processes,
  cancel?: Cancellation,
): Promise<void> {
  const { body } = await store.getStream(artifact.key);
  const digest = new DigestStream();
  const feed = new PassThrough({ highWaterMark: 1 << 20 });
  let decodeError: unknown;
  const decoding = decodeInto(feed, artifact, identities, target, processes, cancel).catch((e: unknown) => {
    decodeError = e;
    feed.destroy();
  });
  // The checksum covers every stored byte even when decoding stopped early: a corrupt object is reported as
  // corrupt, not as whatever zstd or age made of it.
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (decodeError !== undefined || feed.destroyed || feed.write(chunk)) return cb();
      const done = () => {
        feed.off('drain', done);
        feed.off('close', done);
        cb();
      };
      feed.on('drain', done);
      feed.on('close', done);
    },
    final(cb) {
      feed.end();
      cb();
    },
  });
  const where = 'file' in target ? target.file : 'pg_restore';
  try {
    await pipeline(body, digest, sink);
    await decoding;
    const sha = digest.sha256();
    if (digest.bytes !== artifact.bytes || sha !== artifact.sha256) {
      throw new ChecksumMismatch(
        `Checksum mismatch for ${artifact.key}: the manifest says ${artifact.bytes} bytes with SHA-256 ${artifact.sha256}, the store returned ${digest.bytes} bytes with SHA-256 ${sha}. The object is corrupt or was altered; ${'file' in target ? 'nothing was restored' : 'what was restored from it was dropped'}. Verify an older backup.`,
      );
    }
    if (decodeError !== undefined) {
      if (noSpace(decodeError))
        throw new UserError(
          `The disk filled up while writing the decompressed ${artifact.key} to ${where} (${(decodeError as Error).message}). Free space, or point RUNNER_TEMP (the CLI: TMPDIR) at a larger disk, e.g. a larger runner or a mounted volume.`,
        );
      if (decodeError instanceof UserError) throw decodeError;
      throw new DecodeFailed(`Decompressing ${artifact.key} failed: ${(decodeError as Error).message}`);
    }
  } catch (e) {
    feed.destroy();
    body.destroy();
    await decoding;
    throw e;
  }
}

/** age -> zstd -d -> target: zstd writes the file (or the child's stdin) itself; Node hands it the stored bytes. */
async function decodeInto(
  source: Readable,
  artifact: Artifact,
  identities: string[],
  target: DecodeTarget,
  processes: Processes,
  cancel?: Cancellation,
): Promise<void> {
  let stream = source;
  if (artifact.encryption) stream = await decryptStream(stream, identities);
  if (artifact.compression !== 'zstd') {
    await pipeline(stream, 'file' in target ? createWriteStream(target.file) : target.stdin.stdin!);
    return;
  }
  const out = 'file' in target ? openSync(target.file, 'w') : target.stdin.stdin!;
  let zstd;
  try {
    zstd = processes.spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', out, 'pipe'] }, cancel);
  } finally {
    // zstd holds its own copy: the child sees the end of its input when zstd exits.
    if (typeof out === 'number') closeSync(out);
    else out.destroy();
  }
  const watch = new ChildWatch('zstd -d', zstd);
  zstd.stdin!.on('error', () => undefined);
  try {
    await Promise.all([pipeline(stream, zstd.stdin!), watch.succeeded()]);
  } catch (e) {
    zstd.kill();
    // zstd's own words (a write error, a corrupt frame) beat the EPIPE of the stream feeding it.
    await watch.exited.catch(() => undefined);
    const tail = watch.stderrTail();
    throw tail && !(e instanceof UserError) ? new ChildFailure('zstd -d', `zstd -d: ${tail}`, tail) : e;
  }
}
