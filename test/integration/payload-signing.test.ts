// What the uploads sign (src/lib/payload-signing.ts), seen by an S3 endpoint that checks every body against its
// payload hash and CRC32 the way S3 does: over https with a checksum the SHA-256 pass is skipped, otherwise the
// body stays signed, and every write is accepted either way.
import { S3Client, type ServiceInputTypes, type ServiceOutputTypes } from '@aws-sdk/client-s3';
import type { DeserializeMiddleware } from '@smithy/types';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Readable } from 'node:stream';
import { ObjectStore } from '../../src/lib/s3.js';
import { startDiscardS3, type DiscardS3 } from '../harness/discard-s3.js';
import { makeTestCa, type TestCa } from '../harness/tls.js';

const PART = 5 << 20;
let ca: TestCa;
let overTls: DiscardS3;
let plain: DiscardS3;

beforeAll(async () => {
  ca = makeTestCa('pba-s3-ca');
  [overTls, plain] = await Promise.all([startDiscardS3({ tls: ca, check: true }), startDiscardS3({ check: true })]);
});
afterAll(async () => {
  await Promise.all([overTls?.stop(), plain?.stop()]);
});

/** What reached the SDK's handler for each write: a stream, or the buffer itself (recorded by the test's client). */
let bodiesAtHandler: string[] = [];

function storeOf(endpoint: DiscardS3, checksums: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED') {
  const client = new S3Client({
    endpoint: endpoint.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    requestHandler: { httpsAgent: new https.Agent({ ca: readFileSync(ca.caFile) }) },
    maxAttempts: 1,
  });
  const store = new ObjectStore(client, 'bucket');
  // Right after the slicing middleware, which the store installs on its first use.
  const record: DeserializeMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next) => (args) => {
    const body = (args.request as { body?: unknown }).body;
    bodiesAtHandler.push(body instanceof Readable ? 'stream' : typeof body === 'string' ? 'string' : 'buffer');
    return next(args);
  };
  void store.open().then(() =>
    client.middlewareStack.addRelativeTo(record, {
      relation: 'after',
      toMiddleware: 'pbaWriteBodiesInSlices',
      name: 'testRecordBody',
    }),
  );
  return store;
}

/** Uploads three parts and a small text object; returns what the endpoint saw of those writes. */
async function writesThrough(endpoint: DiscardS3, checksums: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED', key: string) {
  const store = storeOf(endpoint, checksums);
  const data = randomBytes(2 * PART + 12345);
  const up = await store.uploadStream(`${key}/dump`, Readable.from([data]), { partSizeBytes: PART, queueSize: 2 });
  expect(up.bytes).toBe(data.length);
  await store.putText(`${key}/manifest.json`, '{"formatVersion":1}', 'application/json');
  (await store.open()).client.destroy();
  return endpoint.writes().filter((w) => w.key.startsWith(`${key}/`));
}

const hex = /^[0-9a-f]{64}$/;

test('over https with CRC32: parts and objects sign UNSIGNED-PAYLOAD and carry the CRC32 the store checks', async () => {
  const writes = await writesThrough(overTls, 'WHEN_SUPPORTED', 'tls-crc');
  expect(writes.map((w) => w.kind).sort()).toEqual(['object', 'part', 'part', 'part']);
  for (const w of writes) {
    expect(w.payloadHash).toBe('UNSIGNED-PAYLOAD');
    expect(w.crc32).toMatch(/^[A-Za-z0-9+/]{6}==$/);
  }
});

test('every part reaches the handler as a stream of slices, over https and http, and arrives intact', async () => {
  for (const [endpoint, key] of [
    [overTls, 'sliced-tls'],
    [plain, 'sliced-http'],
  ] as const) {
    bodiesAtHandler = [];
    // The checking endpoint refuses a body whose hash or CRC32 does not match it.
    const writes = await writesThrough(endpoint, 'WHEN_SUPPORTED', key);
    expect(writes).toHaveLength(4);
    // Three parts (two of 5 MiB, a 12345-byte tail, which is one slice) and the manifest, besides the small
    // requests with no body at all (CreateMultipartUpload, Complete).
    expect(bodiesAtHandler.filter((b) => b === 'stream')).toHaveLength(2);
    expect(bodiesAtHandler).toContain('string');
  }
});

test('over https without a checksum the payload stays signed (the signature is the only check of the body)', async () => {
  const writes = await writesThrough(overTls, 'WHEN_REQUIRED', 'tls-none');
  expect(writes).toHaveLength(4);
  for (const w of writes) {
    expect(w.payloadHash).toMatch(hex);
    expect(w.crc32).toBeUndefined();
  }
});

test('over plain http the payload stays signed even with a CRC32', async () => {
  const writes = await writesThrough(plain, 'WHEN_SUPPORTED', 'http-crc');
  expect(writes).toHaveLength(4);
  for (const w of writes) {
    expect(w.payloadHash).toMatch(hex);
    expect(w.crc32).toBeDefined();
  }
});

test('the checking endpoint refuses a body that does not match its payload hash (so the tests above can fail)', async () => {
  const res = await fetch(`${plain.endpoint}/bucket/forged`, {
    method: 'PUT',
    headers: { 'x-amz-content-sha256': '0'.repeat(64) },
    body: 'not what was hashed',
  });
  expect(res.status).toBe(400);
  expect(await res.text()).toContain('BadDigest');
});
