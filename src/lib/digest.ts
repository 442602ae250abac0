import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through stage that counts the bytes and computes the SHA-256 of what flows through it: how a backup
 * records, and a verification checks, the object as stored. `beforeEnd` may hold back the end of the stream
 * (and fail it) until something else has finished, e.g. the processes that produced the bytes.
 */
export class DigestStream extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly beforeEnd?: () => Promise<void>) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.beforeEnd) return cb();
    this.beforeEnd().then(
      () => cb(),
      (e: Error) => cb(e),
    );
  }

  /** Hex SHA-256; call once, after the stream has ended. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}
