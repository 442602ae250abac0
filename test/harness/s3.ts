import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TestS3 {
  endpoint: string;
  /** Credentials for the server; tests put them in the environment as real users do. */
  env: Record<string, string>;
  client: S3Client;
  /** `objectLock`: created with S3 Object Lock enabled (the wrapper implements it; s3rver has none). */
  createBucket(prefix?: string, options?: { objectLock?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// The SDK's notice about its future Node requirement is noise in test and drill output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let counter = 0;

/** An S3 server over HTTP on loopback (s3rver), or the one named by TEST_S3_ENDPOINT. */
export async function startS3(): Promise<TestS3> {
  let endpoint = process.env.TEST_S3_ENDPOINT;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  const env = {
    AWS_ACCESS_KEY_ID: process.env.TEST_S3_ACCESS_KEY_ID ?? 'S3RVER',
    AWS_SECRET_ACCESS_KEY: process.env.TEST_S3_SECRET_ACCESS_KEY ?? 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  if (!endpoint) {
    dir = mkdtempSync(path.join(os.tmpdir(), 's3test-'));
    child = spawn(process.execPath, ['--openssl-legacy-provider', path.join(here, 's3rver-main.cjs'), dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child!.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child!.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    });
    endpoint = `http://127.0.0.1:${port}`;
  }
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    env,
    client,
    async createBucket(prefix = 'bucket', options = {}) {
      const name = `${prefix}-${process.pid}-${counter++}-${Date.now().toString(36)}`.toLowerCase();
      await client.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: options.objectLock }));
      return name;
    },
    async stop() {
      client.destroy();
      if (child) {
        const exited = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
