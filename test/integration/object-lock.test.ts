import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { listKeys, startS3, type TestS3 } from '../harness/index.js';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => s3?.stop());

const DAY = 86400_000;
const errorName = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { name?: string }) => e.name,
  );

test('the test S3 server implements Object Lock as S3 documents it', async () => {
  const locked = await s3.createBucket('lock-on', { objectLock: true });
  const plain = await s3.createBucket('lock-off');
  const config = await s3.client.send(new GetObjectLockConfigurationCommand({ Bucket: locked }));
  expect(config.ObjectLockConfiguration?.ObjectLockEnabled).toBe('Enabled');
  expect(await errorName(s3.client.send(new GetObjectLockConfigurationCommand({ Bucket: plain })))).toBe(
    'ObjectLockConfigurationNotFoundError',
  );
  const until = new Date(Date.now() + DAY);
  const put = (Bucket: string, Key: string, mode: 'GOVERNANCE' | 'COMPLIANCE', checksum = true) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket,
        Key,
        Body: 'x',
        ObjectLockMode: mode,
        ObjectLockRetainUntilDate: until,
        ...(checksum ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      }),
    );
  expect(await errorName(put(plain, 'a', 'GOVERNANCE'))).toBe('InvalidRequest');
  expect(await errorName(put(locked, 'no-checksum', 'GOVERNANCE', false))).toBe('InvalidRequest');
  await put(locked, 'gov', 'GOVERNANCE');
  await put(locked, 'comp', 'COMPLIANCE');
  await s3.client.send(new PutObjectCommand({ Bucket: locked, Key: 'free', Body: 'x' }));
  const r = await s3.client.send(new GetObjectRetentionCommand({ Bucket: locked, Key: 'gov' }));
  expect(r.Retention).toEqual({ Mode: 'GOVERNANCE', RetainUntilDate: new Date(until.toISOString()) });

  expect(await errorName(s3.client.send(new DeleteObjectCommand({ Bucket: locked, Key: 'gov' })))).toBe('AccessDenied');
  expect(
    await errorName(s3.client.send(new PutObjectCommand({ Bucket: locked, Key: 'comp', Body: 'overwrite' }))),
  ).toBe('AccessDenied');
  const batch = await s3.client.send(
    new DeleteObjectsCommand({
      Bucket: locked,
      Delete: { Objects: [{ Key: 'gov' }, { Key: 'comp' }, { Key: 'free' }], Quiet: true },
    }),
  );
  expect(batch.Errors?.map((e) => `${e.Key} ${e.Code}`).sort()).toEqual(['comp AccessDenied', 'gov AccessDenied']);
  expect((await listKeys(s3.client, locked)).sort()).toEqual(['comp', 'gov']);
  // Governance yields to an explicit bypass; compliance yields to nobody.
  await s3.client.send(new DeleteObjectCommand({ Bucket: locked, Key: 'gov', BypassGovernanceRetention: true }));
  expect(
    await errorName(
      s3.client.send(new DeleteObjectCommand({ Bucket: locked, Key: 'comp', BypassGovernanceRetention: true })),
    ),
  ).toBe('AccessDenied');
  expect(await listKeys(s3.client, locked)).toEqual(['comp']);
});

test('the test S3 server refuses the parts of a locked multipart upload that carry no checksum, as S3 documents', async () => {
  const locked = await s3.createBucket('lock-parts', { objectLock: true });
  const upload = (client: S3Client, Key: string) =>
    new Upload({
      client,
      partSize: 5 * 1024 * 1024,
      params: {
        Bucket: locked,
        Key,
        Body: Buffer.alloc(6 * 1024 * 1024, 7),
        ObjectLockMode: 'COMPLIANCE',
        ObjectLockRetainUntilDate: new Date(Date.now() + DAY),
      },
    }).done();
  // s3.client sends no checksum it is not required to (WHEN_REQUIRED): S3 refuses the first part.
  expect(await errorName(upload(s3.client, 'bare'))).toBe('InvalidRequest');
  const checksummed = new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await upload(checksummed, 'with-crc32');
  } finally {
    checksummed.destroy();
  }
  const r = await s3.client.send(new GetObjectRetentionCommand({ Bucket: locked, Key: 'with-crc32' }));
  expect(r.Retention?.Mode).toBe('COMPLIANCE');
  expect(await listKeys(s3.client, locked)).toEqual(['with-crc32']);
});
