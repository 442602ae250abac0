/**
 * A streamed upload into one S3 object that copies the stream's bytes into a fixed pool of part buffers, filled in
 * place and reused: memory is `(queueSize + 1) × partSize` whatever the object's size, and each stored byte is
 * copied once in Node (chunk → part buffer) with no per-part allocation. It replaces lib-storage's chunker, which
 * allocates and concatenates a fresh buffer for every part (docs/PERFORMANCE.md: a copy into cold memory, then
 * the garbage collector, were the largest costs of the backup's own in the profile).
 *
 * Like lib-storage: a body smaller than one part is sent with one PutObject; a larger one as a multipart upload
 * whose parts carry the client's checksum mode (CRC32 when `WHEN_SUPPORTED`), completed with the parts in order,
 * then tagged. Every request goes through the client's retry policy (src/lib/s3.ts `S3_RETRY`); the part buffers
 * are whole buffers, so a retried part is sent again from memory.
 */
import type { CompletedPart, PutObjectCommandInput, Tag, UploadPartCommandInput } from '@aws-sdk/client-s3';
import type { S3Connection } from './s3.js';

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;

/** Buffers made on first need, up to `count`, then handed round: `take` waits while all are in use. */
export class PartPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];
  private made = 0;

  constructor(
    readonly size: number,
    readonly count: number,
  ) {}

  take(): Promise<Buffer> {
    const b = this.free.pop();
    if (b) return Promise.resolve(b);
    if (this.made < this.count) {
      this.made++;
      // Outside the pooled small-buffer slab: each part buffer is its own allocation, touched only as it fills.
      return Promise.resolve(Buffer.allocUnsafeSlow(this.size));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(b: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(b);
    else this.free.push(b);
  }

  /** Buffers allocated so far (for tests: the pool never grows past `count`). */
  get allocated(): number {
    return this.made;
  }
}

export type ObjectParams = Omit<PutObjectCommandInput, 'Body'> & { Bucket: string; Key: string };

export class PooledUpload {
  /** Set once CreateMultipartUpload answered; an abort needs it. */
  uploadId: string | undefined;
  /** The pool, exposed for tests. */
  readonly pool: PartPool;
  /** The bytes read from the source so far, and whether it was read to its end. */
  bytesRead = 0;
  inputEnded = false;
  private creating: Promise<string> | undefined;
  private readonly parts: CompletedPart[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly controller = new AbortController();

  constructor(
    private readonly s3: S3Connection,
    private readonly params: ObjectParams,
    private readonly o: {
      partSizeBytes: number;
      queueSize: number;
      tags?: Tag[];
      /** Sent with every UploadPart as well (the Content-MD5 middleware for Object Lock writes looks for them). */
      partParams?: Record<string, unknown>;
    },
  ) {
    this.pool = new PartPool(o.partSizeBytes, o.queueSize + 1);
  }

  /**
   * Reads `source` to its end and stores it; resolves with the number of bytes stored. A chunk may be a view of
   * memory the source reuses (src/lib/reused-read.ts): it is copied before the next one is asked for.
   */
  async send(source: AsyncIterable<Buffer>): Promise<number> {
    const size = this.o.partSizeBytes;
    let part = await this.pool.take();
    let fill = 0;
    let number = 0;
    for await (const chunk of source) {
      let at = 0;
      while (at < chunk.length) {
        const n = chunk.copy(part, fill, at);
        fill += n;
        at += n;
        if (fill === size) {
          if (++number > MAX_PARTS)
            throw new Error(`more than ${MAX_PARTS} parts of ${size} bytes: the part size is too small`);
          this.startPart(number, part, fill);
          part = await this.pool.take();
          fill = 0;
        }
        this.throwIfFailed();
      }
      this.bytesRead += chunk.length;
    }
    this.inputEnded = true;
    if (number === 0) {
      await this.s3.client.send(
        new this.s3.sdk.PutObjectCommand({ ...this.params, Body: part.subarray(0, fill) }),
        this.signal(),
      );
    } else {
      if (fill > 0) this.startPart(number + 1, part, fill);
      else this.pool.give(part);
      await this.settled();
      this.throwIfFailed();
      this.parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.s3.client.send(
        new this.s3.sdk.CompleteMultipartUploadCommand({
          Bucket: this.params.Bucket,
          Key: this.params.Key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: this.parts },
        }),
        this.signal(),
      );
    }
    if (this.o.tags?.length)
      await this.s3.client.send(
        new this.s3.sdk.PutObjectTaggingCommand({
          Bucket: this.params.Bucket,
          Key: this.params.Key,
          Tagging: { TagSet: this.o.tags },
        }),
        this.signal(),
      );
    return this.bytesRead;
  }

  /**
   * Stops the requests in flight and aborts the multipart upload, when one was created. A CreateMultipartUpload
   * in flight may still land afterwards: callers sweep the key's open uploads (ObjectStore.uploadStream).
   */
  async abort(): Promise<void> {
    this.controller.abort();
    await this.settled();
    await this.creating?.catch(() => undefined);
    if (this.uploadId)
      await this.s3.client.send(
        new this.s3.sdk.AbortMultipartUploadCommand({
          Bucket: this.params.Bucket,
          Key: this.params.Key,
          UploadId: this.uploadId,
        }),
      );
  }

  private signal() {
    return { abortSignal: this.controller.signal };
  }

  private throwIfFailed() {
    if (this.failure) throw this.failure.error;
  }

  private async settled() {
    while (this.inflight.size) await Promise.all(this.inflight);
  }

  private create(): Promise<string> {
    this.creating ??= (async () => {
      const create = { ...this.params };
      // As lib-storage: a client that sends checksums declares the algorithm for the whole upload.
      if ((await this.s3.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED')
        create.ChecksumAlgorithm ??= 'CRC32';
      const out = await this.s3.client.send(new this.s3.sdk.CreateMultipartUploadCommand(create), this.signal());
      if (!out.UploadId) throw new Error('CreateMultipartUpload answered without an UploadId');
      this.uploadId = out.UploadId;
      return out.UploadId;
    })();
    return this.creating;
  }

  /** Sends one part in the background; its buffer returns to the pool when the request has settled. */
  private startPart(number: number, buffer: Buffer, length: number) {
    const sending = (async () => {
      const uploadId = await this.create();
      const input = {
        ...this.o.partParams,
        Bucket: this.params.Bucket,
        Key: this.params.Key,
        UploadId: uploadId,
        PartNumber: number,
        Body: buffer.subarray(0, length),
      } as UploadPartCommandInput;
      const out = await this.s3.client.send(new this.s3.sdk.UploadPartCommand(input), this.signal());
      if (!out.ETag) throw new Error(`UploadPart ${number} answered without an ETag`);
      this.parts.push({
        PartNumber: number,
        ETag: out.ETag,
        ChecksumCRC32: out.ChecksumCRC32,
        ChecksumCRC32C: out.ChecksumCRC32C,
        ChecksumSHA1: out.ChecksumSHA1,
        ChecksumSHA256: out.ChecksumSHA256,
      });
    })()
      .catch((error: unknown) => {
        this.failure ??= { error };
        // The first failure stops the rest: nothing more is worth sending.
        this.controller.abort();
      })
      .finally(() => {
        this.inflight.delete(sending);
        this.pool.give(buffer);
      });
    this.inflight.add(sending);
  }
}
