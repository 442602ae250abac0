// The S3 inputs every action shares (`s3-bucket`, `s3-prefix`, `s3-region`, ...), read and checked in one place
// so that the adapter in lib/s3.ts never sees action inputs.
import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import type { S3Options } from '../../lib/s3.js';

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
  const region =
    inputs.optional('s3-region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  // AWS regions (`eu-west-1`), and the single words other stores use (`auto`, `garage`).
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(region) || region.length > 64) {
    throw inputError(
      's3-region',
      `${JSON.stringify(region.slice(0, 64))} is not a region name`,
      'Use a region such as `eu-west-1` (lower-case letters, digits and `-`), or `auto` for Cloudflare R2.',
    );
  }
  return {
    bucket,
    prefix: inputs.keyPart('s3-prefix', { path: true }),
    region,
    endpoint,
    forcePathStyle: inputs.bool('s3-force-path-style'),
    checksum: checksum === 'auto' ? (endpoint ? 'when-required' : 'always') : checksum,
  };
}
