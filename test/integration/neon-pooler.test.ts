import { runBundle, startS3, type TestS3 } from '../harness/index.js';

// neon.tech cannot be reached from here: the rewrite itself is table-tested in test/unit/neon-endpoint.test.ts;
// this checks, through the bundle, that the log line appears, that the connection goes to the direct endpoint,
// and that `off` keeps the pooled host.
let s3: TestS3;
let bucket: string;
const POOLED = 'ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech';
const DIRECT = 'ep-cool-darkness-123456.us-east-2.aws.neon.tech';

beforeAll(async () => {
  s3 = await startS3();
  Object.assign(process.env, s3.env);
  bucket = await s3.createBucket('neon-pooler');
});
afterAll(async () => s3?.stop());

const backup = (extra: Record<string, string>) =>
  runBundle('pgdump-to-s3', {
    'database-url': `postgres://app:secret-pw@${POOLED}/neondb?sslmode=require`,
    's3-bucket': bucket,
    's3-endpoint': s3.endpoint,
    's3-force-path-style': 'true',
    ...extra,
  });

test('auto (the default): a Neon pooled endpoint is rewritten to the direct one, with one log line', async () => {
  const run = await backup({});
  const lines = run.logs.split('\n').filter((l) => l.includes("Neon's pooled endpoint"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(`${POOLED}; pg_dump and the snapshot connect to the direct endpoint ${DIRECT}`);
  // The connection attempt went to the direct endpoint (unreachable here).
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toContain(`Cannot connect to ${DIRECT}:5432`);
  expect(run.logs).not.toContain('secret-pw');
});

test('off keeps the pooled host', async () => {
  const run = await backup({ 'neon-direct-endpoint': 'off' });
  expect(run.logs).not.toContain("Neon's pooled endpoint");
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toContain(`Cannot connect to ${POOLED}:5432`);
});

test('a value other than auto or off is an input error', async () => {
  const run = await backup({ 'neon-direct-endpoint': 'yes' });
  expect(run.exitCode).toBe(1);
  expect(run.errors.join('\n')).toMatch(
    /Input `neon-direct-endpoint`: "yes" is not one of the allowed values.*`auto`, `off`/,
  );
});
