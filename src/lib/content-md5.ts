/**
 * Object Lock writes need an integrity header: S3 documents "Content-MD5 or x-amz-sdk-checksum-algorithm is
 * required for any request to upload an object with a retention period" (PutObject) and "required if object lock
 * parameters are specified" (UploadPart). The SDK adds a CRC32 only in `WHEN_SUPPORTED` mode, which
 * `s3-checksum: auto` turns off for custom endpoints (and it no longer computes Content-MD5 at all), so this adds
 * Content-MD5 itself: every store that implements Object Lock accepts it.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

/**
 * Adds Content-MD5 to PutObject and UploadPart requests that carry Object Lock parameters (PooledUpload passes the
 * lock parameters to every UploadPart). Bodies are strings or buffers here: every part is a buffer of the pool.
 */
export function addContentMd5ForLockedWrites(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { ObjectLockMode?: string };
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const name = (context as { commandName?: string }).commandName;
      if (
        input.ObjectLockMode &&
        (name === 'PutObjectCommand' || name === 'UploadPartCommand') &&
        request.headers &&
        !Object.keys(request.headers).some((h) => h.toLowerCase() === 'content-md5') &&
        (typeof request.body === 'string' || request.body instanceof Uint8Array)
      ) {
        request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'pbaContentMd5ForLockedWrites' },
  );
}
