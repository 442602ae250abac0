import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { classify, seededRandom, startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { getObjectBytes, listKeys, startS3, type TestS3 } from '../harness/index.js';

let s3: TestS3;
let proxy: FaultProxy;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  s3 = await startS3();
  proxy = await startFaultProxy(s3.endpoint);
  bucket = await s3.createBucket('proxy');
  // No SDK retries: each request the test sends is exactly one request the proxy sees.
  client = new S3Client({
    endpoint: proxy.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  await proxy?.stop();
  await s3?.stop();
});

beforeEach(() => proxy.setRules([]));

const put = (key: string, body: Buffer | string) =>
  client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

test('classifies S3 requests by operation', () => {
  expect(classify('GET', '/b?list-type=2&prefix=x').op).toBe('ListObjectsV2');
  expect(classify('GET', '/b?list-type=2&continuation-token=abc').laterPage).toBe(true);
  expect(classify('GET', '/b?uploads').op).toBe('ListMultipartUploads');
  expect(classify('POST', '/b?delete').op).toBe('DeleteObjects');
  expect(classify('PUT', '/b/a/manifest.json').op).toBe('PutObject');
  expect(classify('PUT', '/b/a/dump?partNumber=1&uploadId=u').op).toBe('UploadPart');
  expect(classify('POST', '/b/a/dump?uploads').op).toBe('CreateMultipartUpload');
  expect(classify('POST', '/b/a/dump?uploadId=u').op).toBe('CompleteMultipartUpload');
  expect(classify('DELETE', '/b/a/dump?uploadId=u').op).toBe('AbortMultipartUpload');
  expect(classify('HEAD', '/b/a%20b/c').key).toBe('a b/c');
});

test('seeded schedules replay exactly', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 5 }, () => a());
  expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
  expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  expect(seededRandom(43)()).not.toBe(xs[0]);
});

test('streams bodies through unchanged', async () => {
  const body = randomBytes(3 * 1024 * 1024);
  await put('stream/big.bin', body);
  const back = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'stream/big.bin' }));
  expect(Buffer.from(await back.Body!.transformToByteArray()).equals(body)).toBe(true);
  expect(proxy.injected).toHaveLength(0);
});

test('503 SlowDown and 500 InternalError are answered without forwarding', async () => {
  proxy.setRules([
    { fault: 'slowdown', op: 'PutObject', key: /slow$/, name: 'slow' },
    { fault: 'internal', op: 'PutObject', key: /internal$/, name: 'internal' },
  ]);
  await expect(put('codes/slow', 'x')).rejects.toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
  await expect(put('codes/internal', 'x')).rejects.toMatchObject({
    name: 'InternalError',
    $metadata: { httpStatusCode: 500 },
  });
  expect(await listKeys(s3.client, bucket, 'codes/')).toEqual([]);
  expect(proxy.injected.slice(-2).map((i) => [i.rule, i.fault, i.op, i.key])).toEqual([
    ['slow', 'slowdown', 'PutObject', 'codes/slow'],
    ['internal', 'internal', 'PutObject', 'codes/internal'],
  ]);
});

test('reset before forwarding applies nothing; reset after forwarding applies the request and loses the reply', async () => {
  proxy.setRules([
    { fault: 'reset-before', op: 'PutObject', key: /before$/ },
    { fault: 'reset-after', op: 'PutObject', key: /after$/ },
  ]);
  await expect(put('reset/before', 'b')).rejects.toThrow();
  await expect(put('reset/after', 'a')).rejects.toThrow();
  expect(await listKeys(s3.client, bucket, 'reset/')).toEqual(['reset/after']);
  expect((await getObjectBytes(s3.client, bucket, 'reset/after')).toString()).toBe('a');
});

test('targets the nth request of one operation and key, a bounded number of times', async () => {
  // "Reset after applying the first PutObject of manifest.json"
  proxy.setRules([{ fault: 'reset-after', op: 'PutObject', key: /manifest\.json$/, times: 1, name: 'first-manifest' }]);
  await put('nth/dump', 'd');
  await expect(put('nth/manifest.json', '{}')).rejects.toThrow();
  await put('nth/manifest.json', '{}');
  expect(proxy.injected.filter((i) => i.rule === 'first-manifest')).toHaveLength(1);
  proxy.setRules([{ fault: 'internal', op: 'HeadObject', after: 1, times: 1 }]);
  await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nth/dump' }));
  await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nth/dump' }))).rejects.toMatchObject({
    $metadata: { httpStatusCode: 500 },
  });
  await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nth/dump' }));
});

test('fails list pages after the first only', async () => {
  await Promise.all(Array.from({ length: 5 }, (_, i) => put(`pages/${i}`, 'p')));
  proxy.setRules([{ fault: 'internal', op: 'ListObjectsV2', laterPagesOnly: true }]);
  const first = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'pages/', MaxKeys: 2 }));
  expect(first.Contents).toHaveLength(2);
  await expect(
    client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: 'pages/',
        MaxKeys: 2,
        ContinuationToken: first.NextContinuationToken,
      }),
    ),
  ).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
});

test('latency delays and then forwards', async () => {
  proxy.setRules([{ fault: 'latency', op: 'PutObject', latencyMs: 50 }]);
  await put('slowly/x', 'x');
  expect(await listKeys(s3.client, bucket, 'slowly/')).toEqual(['slowly/x']);
  expect(proxy.injected.at(-1)).toMatchObject({ fault: 'latency', key: 'slowly/x' });
});

test('probabilistic rules follow the seed', async () => {
  const schedule = async (seed: number) => {
    proxy.setRules([{ fault: 'internal', op: 'HeadObject', probability: 0.5, name: `p${seed}` }], seed);
    const outcomes: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      outcomes.push(
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'nth/dump' })).then(
          () => true,
          () => false,
        ),
      );
    }
    return outcomes;
  };
  const a = await schedule(7);
  expect(await schedule(7)).toEqual(a);
  expect(a).toContain(true);
  expect(a).toContain(false);
});
