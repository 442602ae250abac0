import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { inputError, UserError } from './errors.js';
import type { InputReader } from './inputs.js';

export interface S3Options {
  bucket: string;
  prefix: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  checksum: 'when-required' | 'always';
}

export function readS3Options(inputs: InputReader): S3Options {
  const bucket = inputs.required('s3-bucket');
  if (!/^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$/i.test(bucket)) {
    throw inputError(
      's3-bucket',
      `"${bucket}" is not a bucket name`,
      'Give the bare bucket name, without `s3://` or a path; put the path in `s3-prefix`.',
    );
  }
  const endpoint = inputs.optional('s3-endpoint');
  if (endpoint) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || !/^https?:$/.test(url.protocol)) {
      throw inputError(
        's3-endpoint',
        `"${endpoint}" is not an http(s) URL`,
        'Use e.g. `https://<account>.r2.cloudflarestorage.com` or `http://127.0.0.1:9000`.',
      );
    }
  }
  const checksum = inputs.oneOf('s3-checksum', ['auto', 'when-required', 'always'] as const);
  return {
    bucket,
    prefix: inputs.string('s3-prefix').replace(/^\/+|\/+$/g, ''),
    region: inputs.optional('s3-region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint,
    forcePathStyle: inputs.bool('s3-force-path-style'),
    checksum: checksum === 'auto' ? (endpoint ? 'when-required' : 'always') : checksum,
  };
}

export function createS3Client(o: S3Options): S3Client {
  const mode = o.checksum === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    requestChecksumCalculation: mode,
    responseChecksumValidation: mode,
    maxAttempts: 5,
  });
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
}

/**
 * The object-store adapter the core receives: one bucket, the operations backups need, and errors translated
 * into messages that say which bucket or key and what to check.
 */
export class ObjectStore {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    private readonly endpointLabel = 'AWS S3',
  ) {}

  static fromOptions(o: S3Options): ObjectStore {
    return new ObjectStore(createS3Client(o), o.bucket, o.endpoint ?? 'AWS S3');
  }

  /** Streams `body` into `key` as a multipart upload; on any error the upload is aborted and the error rethrown. */
  async uploadStream(key: string, body: Readable, o: UploadOptions): Promise<void> {
    const upload = new Upload({
      client: this.client,
      partSize: o.partSizeBytes,
      queueSize: o.queueSize,
      leavePartsOnError: false,
      tags: o.tags ? Object.entries(o.tags).map(([Key, Value]) => ({ Key, Value })) : undefined,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: o.contentType ?? 'application/octet-stream',
        StorageClass: o.storageClass && o.storageClass !== 'STANDARD' ? (o.storageClass as StorageClass) : undefined,
        ServerSideEncryption: o.sse?.mode as ServerSideEncryption | undefined,
        SSEKMSKeyId: o.sse?.kmsKeyId,
      },
    });
    try {
      await upload.done();
    } catch (e) {
      body.destroy();
      await upload.abort().catch(() => undefined);
      throw this.translate(e, key);
    }
  }

  async putJson(key: string, value: unknown, sse?: UploadOptions['sse']): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify(value, null, 2) + '\n',
          ContentType: 'application/json',
          ServerSideEncryption: sse?.mode as ServerSideEncryption | undefined,
          SSEKMSKeyId: sse?.kmsKeyId,
        }),
      );
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async putText(key: string, body: string, contentType: string, sse?: UploadOptions['sse']): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ServerSideEncryption: sse?.mode as ServerSideEncryption | undefined,
          SSEKMSKeyId: sse?.kmsKeyId,
        }),
      );
    } catch (e) {
      throw this.translate(e, key);
    }
  }

  async getStream(key: string): Promise<{ body: Readable; bytes: number }> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
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
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
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

  /** Deletes keys in batches of at most 1000; returns the keys that failed with their reasons. */
  async deleteKeys(keys: string[]): Promise<{ key: string; error: string }[]> {
    const failures: { key: string; error: string }[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        for (const err of out.Errors ?? [])
          failures.push({ key: err.Key ?? '?', error: `${err.Code}: ${err.Message}` });
      } catch (e) {
        for (const key of batch) failures.push({ key, error: (e as Error).message });
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
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
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
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
  }

  /** Turns the SDK's errors for common mistakes into messages that say what to check. */
  translate(e: unknown, key: string): Error {
    if (e instanceof UserError) return e;
    const err = e as {
      name?: string;
      Code?: string;
      message?: string;
      code?: string;
      $metadata?: { httpStatusCode?: number };
    };
    const name = err.name ?? err.Code ?? '';
    const where = `s3://${this.bucket}/${key}`;
    const status = err.$metadata?.httpStatusCode;
    if (name === 'NoSuchBucket') {
      return new UserError(
        `Bucket "${this.bucket}" does not exist at ${this.endpointLabel}. Check \`s3-bucket\`, \`s3-region\` and \`s3-endpoint\`, or create the bucket.`,
        { cause: e },
      );
    }
    if (name === 'NoSuchKey' || status === 404) {
      return new UserError(`${where} does not exist. Check \`s3-prefix\` and the backup id.`, { cause: e });
    }
    if (
      name === 'AccessDenied' ||
      name === 'InvalidAccessKeyId' ||
      name === 'SignatureDoesNotMatch' ||
      status === 403
    ) {
      return new UserError(
        `Access to ${where} was denied (${name || status}). Check the AWS credentials in the environment (aws-actions/configure-aws-credentials, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that their policy allows s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on this bucket.`,
        { cause: e },
      );
    }
    if (name === 'CredentialsProviderError' || /credential/i.test(err.message ?? '')) {
      return new UserError(
        `No AWS credentials were found for ${where}: ${err.message}. Use aws-actions/configure-aws-credentials (OIDC) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the step's env.`,
        { cause: e },
      );
    }
    const code = err.code ?? (e as { cause?: { code?: string } }).cause?.code;
    if (code && ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(code)) {
      return new UserError(
        `Cannot reach the object store ${this.endpointLabel} (${code}) for ${where}. Check \`s3-endpoint\` and the network.`,
        { cause: e },
      );
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}
