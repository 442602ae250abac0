import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** The byte count and SHA-256 of an object as stored: how a backup records, and a verification checks, it. */
export class Digest {
  bytes = 0;
  private readonly hash = createHash('sha256');

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  /** Hex SHA-256; call once, after the last update. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}

/**
 * A pass-through stage that digests what flows through it. `beforeEnd` may hold back the end of the stream (and
 * fail it) until something else has finished, e.g. the processes that produced the bytes.
 */
export class DigestStream extends Transform {
  private readonly digest = new Digest();

  constructor(private readonly beforeEnd?: () => Promise<void>) {
    super();
  }

  get bytes(): number {
    return this.digest.bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.digest.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.beforeEnd) return cb();
    this.beforeEnd().then(
      () => cb(),
      (e: Error) => cb(e),
    );
  }

  sha256(): string {
    return this.digest.sha256();
  }
}

/**
 * DigestStream for a chunk iterator whose chunks may be views of reused memory (src/lib/reused-read.ts): each is
 * digested before it is handed on. `beforeEnd` holds back the end as in DigestStream. `finished` settles once the
 * source was read to its end (rejected with the source's or `beforeEnd`'s error), or, resolved, when the consumer
 * stopped early or `stop` is called (the consumer's own failure is then the one to report): callers call `stop`
 * once the consumer is done, which may be before it ever asked for a chunk. `failed` says, at once, whether the
 * source or `beforeEnd` failed.
 */
export function digested(
  source: AsyncIterable<Buffer>,
  digest: Digest,
  beforeEnd: () => Promise<void>,
): { chunks: AsyncGenerator<Buffer>; finished: Promise<void>; stop: () => void; failed: () => boolean } {
  let settle!: (e?: unknown) => void;
  let failed = false;
  const finished = new Promise<void>((resolve, reject) => (settle = (e) => (e === undefined ? resolve() : reject(e))));
  finished.catch(() => undefined); // read by the caller once the consumer is done
  const chunks = (async function* () {
    try {
      for await (const chunk of source) {
        digest.update(chunk);
        yield chunk;
      }
      await beforeEnd();
      settle();
    } catch (e) {
      failed = true;
      settle(e ?? new Error('the source failed'));
      throw e;
    } finally {
      settle();
    }
  })();
  return { chunks, finished, stop: () => settle(), failed: () => failed };
}
