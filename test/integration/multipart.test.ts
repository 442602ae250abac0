// The pooled uploader (src/lib/multipart.ts) against the embedded S3 server, directly and through the
// fault-injecting proxy: sizes around the part boundary, the pool's bound, retried parts, and failures that
// must leave neither an object nor an open multipart upload.
import { S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PooledUpload } from '../../src/lib/multipart.js';
import { ObjectStore } from '../../src/lib/s3.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { getObjectBytes, listKeys, startS3, type TestS3 } from '../harness/index.js';

const PART = 5 << 20; // S3's smallest part

let s3: TestS3;
let proxy: FaultProxy;
let bucket: string;
let proxied: S3Client;
// One store per client: a store adds its middleware to the client it wraps.
let proxiedStore: ObjectStore;
let directStore: ObjectStore;

beforeAll(async () => {
  s3 = await startS3();
  bucket = await s3.createBucket('multipart');
  proxy = await startFaultProxy(s3.endpoint);
  proxied = new S3Client({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  proxiedStore = new ObjectStore(proxied, bucket);
  directStore = new ObjectStore(s3.client, bucket);
});
afterAll(async () => {
  proxied?.destroy();
  await proxy?.stop();
  await s3?.stop();
});
beforeEach(() => proxy.setRules([]));

/** `bytes` of random data in chunks of odd sizes (so chunks straddle part boundaries), and its SHA-256. */
function source(bytes: number, chunk = 300_007): { body: Readable; sha256: string } {
  const data = randomBytes(bytes);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes; at += chunk) chunks.push(data.subarray(at, Math.min(bytes, at + chunk)));
  return { body: Readable.from(chunks), sha256: createHash('sha256').update(data).digest('hex') };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.each([
  ['empty', 0, 0],
  ['smaller than a part (one PutObject)', 1000, 0],
  ['exactly one part', PART, 1],
  ['one part and one byte', PART + 1, 2],
  ['exactly three parts', 3 * PART, 3],
  ['seven parts and a tail, four in flight', 7 * PART + 12345, 8],
])('%s: stored byte-identical, the pool never grows past queueSize + 1', async (_name, bytes, parts) => {
  const key = `sizes/${bytes}`;
  const { body, sha256 } = source(bytes);
  const before = proxy.requests.get('UploadPart') ?? 0;
  const upload = new PooledUpload(
    await proxiedStore.open(),
    { Bucket: bucket, Key: key },
    { partSizeBytes: PART, queueSize: 4 },
  );
  expect(await upload.send(body)).toBe(bytes);
  expect((proxy.requests.get('UploadPart') ?? 0) - before).toBe(parts);
  expect(upload.pool.allocated).toBeLessThanOrEqual(5);
  const stored = await getObjectBytes(s3.client, bucket, key);
  expect(stored.length).toBe(bytes);
  expect(sha(stored)).toBe(sha256);
});

test('a part answered 503 twice is sent again from its buffer and the object is intact', async () => {
  proxy.setRules([{ fault: 'slowdown', op: 'UploadPart', after: 1, times: 2 }]);
  const { body, sha256 } = source(4 * PART + 99);
  const upload = new PooledUpload(
    await proxiedStore.open(),
    { Bucket: bucket, Key: 'retried' },
    { partSizeBytes: PART, queueSize: 2 },
  );
  await upload.send(body);
  expect(proxy.injected.filter((f) => f.op === 'UploadPart')).toHaveLength(2);
  expect(sha(await getObjectBytes(s3.client, bucket, 'retried'))).toBe(sha256);
});

test('a part that keeps failing fails the upload; ObjectStore leaves no object and no open multipart upload', async () => {
  proxy.setRules([{ fault: 'internal', op: 'UploadPart', after: 2 }]);
  const store = proxiedStore;
  const { body } = source(6 * PART);
  await expect(store.uploadStream('failing/part', body, { partSizeBytes: PART, queueSize: 2 })).rejects.toThrow(
    /failing\/part/,
  );
  proxy.setRules([]);
  expect(await listKeys(s3.client, bucket, 'failing/')).toEqual([]);
  expect(await directStore.listMultipartUploads('failing/')).toEqual([]);
});

test('a source that fails midway fails the upload with its error and leaves nothing behind', async () => {
  const store = directStore;
  const body = Readable.from(
    (async function* () {
      for (let i = 0; i < 3; i++) yield randomBytes(PART);
      throw new Error('pg_dump exited with code 1');
    })(),
  );
  await expect(store.uploadStream('failing/source', body, { partSizeBytes: PART, queueSize: 2 })).rejects.toThrow(
    /pg_dump exited with code 1/,
  );
  expect(await listKeys(s3.client, bucket, 'failing/')).toEqual([]);
  expect(await store.listMultipartUploads('failing/')).toEqual([]);
});

test('a lost CompleteMultipartUpload reply is confirmed by looking at the object', async () => {
  proxy.setRules([{ fault: 'reset-after', op: 'CompleteMultipartUpload', times: 10 }]);
  const store = proxiedStore;
  const { body, sha256 } = source(2 * PART + 5);
  const r = await store.uploadStream('lost/complete', body, { partSizeBytes: PART, queueSize: 2 });
  expect(r).toEqual({ bytes: 2 * PART + 5, confirmedBy: 'head' });
  expect(sha(await getObjectBytes(s3.client, bucket, 'lost/complete'))).toBe(sha256);
});

test('tags are applied to the stored object', async () => {
  const store = directStore;
  const { body } = source(PART + 10);
  await store.uploadStream('tagged/object', body, { partSizeBytes: PART, queueSize: 2, tags: { stream: 'app' } });
  const { GetObjectTaggingCommand } = await import('@aws-sdk/client-s3');
  const out = await s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tagged/object' }));
  expect(out.TagSet).toEqual([{ Key: 'stream', Value: 'app' }]);
});
