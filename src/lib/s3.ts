import type { S3Client, ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import type { Cancellation } from './cancel.js';
import type { Readable } from 'node:stream';
import { addContentMd5ForLockedWrites } from './content-md5.js';
import { signUnsignedPayloadOverTls } from './payload-signing.js';
import { writeBodiesInSlices } from './sliced-body.js';
import { FaultError, isReported, UserError, type ServiceReply } from './errors.js';
import { lockParams, type ObjectLockWrite } from './object-lock.js';
import { PooledUpload } from './multipart.js';
import { loadS3Sdk, type S3Sdk } from './s3-sdk.js';

/** Where backups live and how to talk to the store; read from the actions' inputs by `readS3Options`. */
export interface S3Options {
  bucket: string;
  prefix: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  checksum: 'when-required' | 'always';
}

/**
 * The S3 retry policy, stated once (docs/FORMAT.md, "Retries"): the SDK's standard mode, exponential backoff with
 * full jitter (0.1 s doubling, capped at 20 s) and a retry quota that stops retrying a store that keeps failing;
 * six attempts per request ride out a few seconds of throttling, 5xx or resets. Not `adaptive`: its client-side
 * rate limiter can hold a long upload's parallel parts below one request per second for minutes after a single
 * 503. Every request may be retried safely: object keys are unique per backup, and a lost reply is checked, not
 * assumed (`uploadStream`, `writeManifestChecked`).
 */
export const S3_RETRY = { mode: 'standard', maxAttempts: 6 } as const;

export function createS3Client(sdk: S3Sdk, o: S3Options): S3Client {
  const mode = o.checksum === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new sdk.S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    requestChecksumCalculation: mode,
    responseChecksumValidation: mode,
    retryMode: S3_RETRY.mode,
    maxAttempts: S3_RETRY.maxAttempts,
    // No `Expect: 100-continue` on bodies over 2 MB: the SDK's Node handler sends each such request on a connection
    // of its own (a keep-alive-less agent), so every part paid a TCP and, on https, a TLS handshake. What the
    // header saves, a body sent to a request the store then refuses, is at most one part here.
    expectContinueHeader: false,
  });
}

/** Error codes and statuses that mean "the store failed or throttled", not "you asked for something wrong". */
const FAULT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const PERMISSION_CODES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled']);

/** The status, code and attempts of an SDK error, read from its fields (never from its message). */
export function s3Reply(e: unknown): ServiceReply {
  const err = (e ?? {}) as {
    name?: string;
    Code?: string;
    code?: string;
    cause?: { code?: string };
    $metadata?: { httpStatusCode?: number; attempts?: number };
  };
  const network = err.code ?? err.cause?.code;
  const name = err.Code ?? (err.name && err.name !== 'Error' ? err.name : undefined);
  return {
    service: 's3',
    status: err.$metadata?.httpStatusCode,
    code: network && /^E[A-Z]+$/.test(network) ? network : name,
    attempts: err.$metadata?.attempts,
  };
}

export type S3ErrorKind = 'permission' | 'no-bucket' | 'not-found' | 'credentials' | 'fault' | 'other';

export function classifyS3(r: ServiceReply): S3ErrorKind {
  if (r.code === 'NoSuchBucket') return 'no-bucket';
  if ((r.code && PERMISSION_CODES.has(r.code)) || r.status === 403) return 'permission';
  if (r.code === 'NoSuchKey' || r.code === 'NotFound' || r.status === 404) return 'not-found';
  if (r.code === 'CredentialsProviderError') return 'credentials';
  if ((r.code && FAULT_CODES.has(r.code)) || (r.status !== undefined && r.status >= 500) || r.status === 429)
    return 'fault';
  // No reply at all (the connection failed in some other way) is the store's fault too.
  if (r.status === undefined && r.code !== undefined && /^E[A-Z]+$/.test(r.code)) return 'fault';
  return 'other';
}

export interface ObjectInfo {
  key: string;
  bytes: number;
  lastModified: Date;
}

export interface UploadOptions {
  partSizeBytes: number;
  queueSize: number;
  storageClass?: string;
  sse?: { mode: 'AES256' | 'aws:kms'; kmsKeyId?: string };
  tags?: Record<string, string>;
  contentType?: string;
  /** A cancel aborts the upload and its parts. */
  cancel?: Cancellation;
  /** S3 Object Lock retention of the object (src/lib/object-lock.ts). */
  lock?: ObjectLockWrite;
}

/**
 * The object-store adapter the core receives: one bucket, the operations backups need, and errors translated
 * into messages that say which bucket or key and what to check.
 */
export class ObjectStore {
  /** Requests sent again by the SDK's retries, over this store's life: the backup summary reports it. */
  retries = 0;
  private opened: Promise<S3Connection> | undefined;

  /** `client`: a client, or how to make one once the SDK has loaded (on the first request; src/lib/s3-sdk.ts). */
  constructor(
    private readonly client: S3Client | ((sdk: S3Sdk) => S3Client),
    readonly bucket: string,
    private readonly endpointLabel = 'AWS S3',
  ) {}

  /** The SDK and this store's client, with our middleware: loaded and made on the first call. */
  open(): Promise<S3Connection> {
    return (this.opened ??= loadS3Sdk().then((sdk) => {
      const client = typeof this.client === 'function' ? this.client(sdk) : this.client;
      this.instrument(client);
      return { sdk, client };
    }));
  }

  private instrument(client: S3Client) {
    client.middlewareStack.add(
      (next) => async (args) => {
        try {
          const out = await next(args);
          this.countAttempts((out.output as { $metadata?: { attempts?: number } }).$metadata?.attempts);
          return out;
        } catch (e) {
          this.countAttempts((e as { $metadata?: { attempts?: number } }).$metadata?.attempts);
          throw e;
        }
      },
      { step: 'initialize', name: 'pbaCountRetries' },
    );
    addContentMd5ForLockedWrites(client);
    signUnsignedPayloadOverTls(client);
    writeBodiesInSlices(client);
  }

  private countAttempts(attempts: number | undefined) {
    if (attempts && attempts > 1) this.retries += attempts - 1;
  }

  static fromOptions(o: S3Options): ObjectStore {
    return new ObjectStore((sdk) => createS3Client(sdk, o), o.bucket, o.endpoint ?? 'AWS S3');
  }

  /**
   * Streams `source` into `key` through a fixed pool of part buffers (src/lib/multipart.ts; multipart when larger
   * than a part). On an error after the whole body was sent
   * (CompleteMultipartUpload or the PutObject applied but its reply lost, or a retried Complete answered
   * `NoSuchUpload`), the object is looked at: when it exists with exactly the bytes sent, the upload succeeded
   * and is reported as confirmed by `head`. Otherwise the upload is aborted and the error rethrown.
   */
  async uploadStream(
    key: string,
    source: AsyncIterable<Buffer> & { destroy(): unknown },
    o: UploadOptions,
  ): Promise<{ bytes: number; confirmedBy: 'reply' | 'head' }> {
    const upload = new PooledUpload(
      await this.open(),
      {
        Bucket: this.bucket,
        Key: key,
        ContentType: o.contentType ?? 'application/octet-stream',
        StorageClass: o.storageClass && o.storageClass !== 'STANDARD' ? (o.storageClass as StorageClass) : undefined,
        ServerSideEncryption: o.sse?.mode as ServerSideEncryption | undefined,
        SSEKMSKeyId: o.sse?.kmsKeyId,
        ...lockParams(o.lock),
      },
      {
        partSizeBytes: o.partSizeBytes,
        queueSize: o.queueSize,
        tags: o.tags ? Object.entries(o.tags).map(([Key, Value]) => ({ Key, Value })) : undefined,
        partParams: lockParams(o.lock),
      },
    );
    const done = upload.send(source);
    done.catch(() => undefined);
    const undo = o.cancel?.onCancel(`aborted the multipart upload of s3://${this.bucket}/${key}`, async () => {
      source.destroy();
      await upload.abort();
      // A CreateMultipartUpload in flight may land after the abort: wait for the upload to settle, then abort
      // whatever upload of this (run-unique) key is open.
      await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
      for (const u of await this.listMultipartUploads(key)) {
        if (u.key === key) await this.abortMultipartUpload(key, u.uploadId);
      }
    });
    try {
      const bytes = await done;
      undo?.dismiss();
      return { bytes, confirmedBy: 'reply' };
    } catch (e) {
      const sent = upload.bytesRead;
      if (upload.inputEnded && (await this.headBytes(key).catch(() => undefined)) === sent) {
        undo?.dismiss();
        return { bytes: sent, confirmedBy: 'head' };
      }
      source.destroy();
      if (undo) await undo.run().catch(() => undefined);
      else await upload.abort().catch(() => undefined);
      throw this.translate(e, key);
    }
  }

  /** Runs `request` once the SDK has loaded and the client is made. */
  private async s3<T>(request: (c: S3Connection) => Promise<T>): Promise<T> {
    return request(await this.open());
  }

  /** The size of an object, or undefined when it does not exist; other errors are thrown. */
  async headBytes(key: string): Promise<number | undefined> {
    try {
      const out = await this.s3(({ sdk, client }) =>
        client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key })),
      );
      return out.ContentLength ?? 0;
    } catch (e) {
      if (classifyS3(s3Reply(e)) === 'not-found') return undefined;
      throw this.translate(e, key);
    }
  }

  /** The object's bytes, or undefined when it does not exist; other errors are thrown. */
  async getBytes(key: string): Promise<Buffer | undefined> {
    let out;
    try {
      out = await this.s3(({ sdk, client }) =>
        client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key })),
      );
    } catch (e) {
      if (classifyS3(s3Reply(e)) === 'not-found') return undefined;
      throw this.translate(e, key);
    }
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  /** The exact bytes `putJson` writes for a value, so a reader can compare what is stored with what was sent. */
  static jsonBytes(value: unknown): string {
    return JSON.stringify(value, null, 2) + '\n';
  }

  async putJson(key: string, value: unknown, sse?: UploadOptions['sse'], lock?: ObjectLockWrite): Promise<void> {
    try {
      await this.s3(({ sdk, client }) =>
        client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: ObjectStore.jsonBytes(value),
            ContentType: 'application/json',
            ServerSideEncryption: sse?.mode as ServerSideEncryption | undefined,
            SSEKMSKeyId: sse?.kmsKeyId,
            ...lockParams(lock),
          }),
        ),
      );
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async putText(
    key: string,
    body: string,
    contentType: string,
    sse?: UploadOptions['sse'],
    lock?: ObjectLockWrite,
  ): Promise<void> {
    try {
      await this.s3(({ sdk, client }) =>
        client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentType: contentType,
            ServerSideEncryption: sse?.mode as ServerSideEncryption | undefined,
            SSEKMSKeyId: sse?.kmsKeyId,
            ...lockParams(lock),
          }),
        ),
      );
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async getStream(key: string): Promise<{ body: Readable; bytes: number }> {
    try {
      const out = await this.s3(({ sdk, client }) =>
        client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key })),
      );
      return { body: out.Body as Readable, bytes: out.ContentLength ?? -1 };
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async getJson(key: string): Promise<unknown> {
    const { body } = await this.getStream(key);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  /** Every object under `prefix`. Throws when any page fails: a partial listing must never drive a delete. */
  async listAll(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.s3(({ sdk, client }) =>
          client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })),
        );
      } catch (e) {
        throw this.translate(e, prefix);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key) out.push({ key: o.Key, bytes: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new UserError(
          `Listing s3://${this.bucket}/${prefix} was truncated without a continuation token; nothing was changed.`,
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /**
   * Deletes keys in batches of at most 1000, in the order given; returns the keys that failed with their reasons
   * and what the store answered (for a whole failed batch, its translated error).
   */
  async deleteKeys(keys: string[]): Promise<DeleteFailure[]> {
    const failures: DeleteFailure[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const out = await this.s3(({ sdk, client }) =>
          client.send(
            new sdk.DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
          ),
        );
        for (const err of out.Errors ?? [])
          failures.push({
            key: err.Key ?? '?',
            error: `${err.Code}: ${err.Message}`,
            kind: classifyS3({ service: 's3', code: err.Code }),
          });
      } catch (e) {
        const t = this.translate(e, batch[0]!);
        const kind = classifyS3(s3Reply(e));
        for (const key of batch) failures.push({ key, error: t.message, kind });
      }
    }
    return failures;
  }

  async listMultipartUploads(prefix: string): Promise<{ key: string; uploadId: string; initiated: Date }[]> {
    const out: { key: string; uploadId: string; initiated: Date }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.s3(({ sdk, client }) =>
          client.send(
            new sdk.ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: prefix,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
          ),
        );
      } catch (e) {
        throw this.translate(e, prefix);
      }
      for (const u of page.Uploads ?? []) {
        if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      if (!page.IsTruncated) return out;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.s3(({ sdk, client }) =>
        client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })),
      );
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  /**
   * Turns the SDK's errors into a UserError (a mistake to fix: bucket, key, permissions, credentials) or a
   * FaultError (the store failed after every retry), classified from the status and code kept on `reply`.
   */
  translate(e: unknown, key: string): Error {
    if (isReported(e)) return e;
    const reply = s3Reply(e);
    const where = `s3://${this.bucket}/${key}`;
    const opts = { cause: e, reply };
    const what = [reply.status, reply.code].filter((x) => x !== undefined).join(' ');
    switch (classifyS3(reply)) {
      case 'no-bucket':
        return new UserError(
          `Bucket "${this.bucket}" does not exist at ${this.endpointLabel}. Check \`s3-bucket\`, \`s3-region\` and \`s3-endpoint\`, or create the bucket.`,
          opts,
        );
      case 'not-found':
        return new UserError(`${where} does not exist. Check \`s3-prefix\` and the backup id.`, opts);
      case 'permission':
        return new UserError(
          `Access to ${where} was denied (${what}). Check the AWS credentials in the environment (aws-actions/configure-aws-credentials, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that their policy allows s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on this bucket.`,
          opts,
        );
      case 'credentials':
        return new UserError(
          `No AWS credentials were found for ${where}: ${(e as Error).message}. Use aws-actions/configure-aws-credentials (OIDC) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the step's env.`,
          opts,
        );
      case 'fault': {
        const tries = reply.attempts ? `${reply.attempts} attempt(s)` : 'every attempt';
        const reached = reply.status === undefined;
        return new FaultError(
          `The object store ${this.endpointLabel} ${reached ? 'could not be reached' : 'is unavailable'} (${what || 'no reply'}) for ${where}, after ${tries}. This is a fault of the store or the network, not of the inputs; re-running is safe${reached ? ' (check `s3-endpoint` and the network if it persists)' : ''}.`,
          opts,
        );
      }
      default:
        return e instanceof Error ? e : new Error(String(e));
    }
  }
}

/** A store's loaded SDK and client. */
export interface S3Connection {
  sdk: S3Sdk;
  client: S3Client;
}

export interface DeleteFailure {
  key: string;
  error: string;
  kind: S3ErrorKind;
}
