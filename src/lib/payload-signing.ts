/**
 * SigV4 signs a buffer body by hashing it with SHA-256: a second pass over every stored byte, on top of the
 * manifest's own SHA-256, on the same cores as pg_dump and zstd. Over https, when the request also carries a
 * flexible checksum (`x-amz-checksum-*`, sent in `WHEN_SUPPORTED` mode), the body is already protected twice: TLS
 * against tampering on the way, and the checksum S3 verifies against corruption. Such PutObject and UploadPart
 * requests then sign `UNSIGNED-PAYLOAD` instead, as the AWS CLI and the other AWS SDKs do for S3 over https. Over
 * plain http, or without a checksum, the payload stays signed: the signature is then the store's only check of the
 * body. docs/PERFORMANCE.md has what it saves.
 */
import type { S3Client } from '@aws-sdk/client-s3';

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const PAYLOAD_HASH_HEADER = 'x-amz-content-sha256';
const SIGNED_BODY_WRITES = new Set(['PutObjectCommand', 'UploadPartCommand']);

/** What a request signs in place of its payload's hash, or undefined to keep the hash (pure). */
export function payloadHashOverride(
  command: string | undefined,
  request: { protocol?: string; headers: Record<string, string> },
): typeof UNSIGNED_PAYLOAD | undefined {
  if (!command || !SIGNED_BODY_WRITES.has(command) || request.protocol !== 'https:') return undefined;
  const names = Object.keys(request.headers).map((h) => h.toLowerCase());
  if (names.includes(PAYLOAD_HASH_HEADER)) return undefined;
  return names.some((h) => h.startsWith('x-amz-checksum-')) ? UNSIGNED_PAYLOAD : undefined;
}

/** Installs payloadHashOverride after the SDK's checksum middleware (same step, lower priority), before signing. */
export function signUnsignedPayloadOverTls(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { protocol?: string; headers?: Record<string, string> };
      const command = (context as { commandName?: string }).commandName;
      if (request.headers && payloadHashOverride(command, { protocol: request.protocol, headers: request.headers }))
        request.headers[PAYLOAD_HASH_HEADER] = UNSIGNED_PAYLOAD;
      return next(args);
    },
    { step: 'build', priority: 'low', name: 'pbaUnsignedPayloadOverTls' },
  );
}
