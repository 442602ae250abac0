import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../../src/lib/s3.js';
import { startPostgres, startS3, type TestS3 } from '../harness/index.js';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => s3?.stop());

test('a 100 MB object round-trips byte-identical through the S3 server (streamed multipart upload, streamed download)', async () => {
  const bucket = await s3.createBucket('roundtrip');
  const store = new ObjectStore(s3.client, bucket);
  const block = randomBytes(1 << 20);
  const sent = createHash('sha256');
  let n = 0;
  // 100 distinct MiB (each block salted with its index), generated while uploading.
  const body = Readable.from(
    (function* () {
      for (; n < 100; n++) {
        const chunk = Buffer.concat([Buffer.from(String(n).padStart(8, '0')), block.subarray(8)]);
        sent.update(chunk);
        yield chunk;
      }
    })(),
  );
  await store.uploadStream('big/object.bin', body, { partSizeBytes: 8 << 20, queueSize: 4 });
  const out = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/object.bin' }));
  expect(out.ContentLength).toBe(100 << 20);
  const received = createHash('sha256');
  for await (const c of out.Body as Readable) received.update(c as Buffer);
  expect(received.digest('hex')).toBe(sent.digest('hex'));
}, 120_000);

test('the throwaway Postgres cluster uses password authentication on 127.0.0.1', async () => {
  const pg = await startPostgres();
  try {
    expect(pg.host).toBe('127.0.0.1');
    const rows = await pg.query<{ ok: number }>('SELECT 1 AS ok');
    expect(rows).toEqual([{ ok: 1 }]);
    const { default: pgLib } = await import('pg');
    const wrong = new pgLib.Client({
      host: pg.host,
      port: pg.port,
      user: pg.user,
      password: 'not-the-password',
      database: 'postgres',
    });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
  } finally {
    await pg.stop();
  }
});
