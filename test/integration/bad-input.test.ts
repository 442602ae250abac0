import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GitHubTestServer } from '../harness/github-server.js';
import {
  exec,
  findSecretsInLogs,
  listKeys,
  runBundle,
  startPostgres,
  startS3,
  tempDir,
  type ActionRun,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { readState } from '../../src/core/failure-issue.js';

/**
 * Bad input and secrets (issue 12): each defect through the bundles. Every refusal names the input, shows no stack
 * trace and no secret, and leaves the store, the databases and the workspace as they were.
 */

let pg: TestPostgres;
let s3: TestS3;
let db: string;
let bucket: string;
let identity: string;
const workspace = tempDir('pba-workspace-');
const PASSWORD_IN_ENV_FILE = 'envfile-pass-5n8q';

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  db = await pg.createDatabase('src');
  await pg.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1);', db);
  bucket = await s3.createBucket('bad-input');
  Object.assign(process.env, s3.env);
  const keyFile = path.join(workspace, 'age.key');
  await exec('age-keygen', ['-o', keyFile]);
  identity = (await exec('grep', ['^AGE-SECRET-KEY', keyFile])).toString().trim();
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

const s3Inputs = (extra: Record<string, string> = {}) => ({
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
  database: 'app',
  ...extra,
});
const backup = (extra: Record<string, string>) =>
  runBundle('pgdump-to-s3', { 'database-url': pg.url(db), ...s3Inputs(extra) });

async function databases(): Promise<string[]> {
  return (await pg.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).map((r) => r.datname);
}

/** Refused as the standards ask: exit 1, one error naming the input, no stack, nothing written or created. */
async function expectRefused(run: ActionRun, input: string, what: RegExp, before: string[]) {
  expect(run.exitCode).toBe(1);
  expect(run.errors).toHaveLength(1);
  expect(run.errors[0]).toContain(`Input \`${input}\``);
  expect(run.errors[0]).toMatch(what);
  expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
  expect(await listKeys(s3.client, bucket)).toEqual([]);
  expect(await databases()).toEqual(before);
}

describe('keys stay inside the stream: one validator for every key input', () => {
  test.each([
    ['pgdump-to-s3', 's3-prefix', '../escape', /`\.\.` segment/],
    ['pgdump-to-s3', 's3-prefix', 'backups/../../escape', /`\.\.` segment/],
    ['pgdump-to-s3', 's3-prefix', 'a//b', /empty segment/],
    ['pgdump-to-s3', 's3-prefix', 'a/\u0007b', /control character/],
    ['pgdump-to-s3', 'database', 'app prod', /contains a space/],
    ['pgdump-to-s3', 'database', '..', /`\.\.` segment/],
    ['prune-retention', 'database', '../', /contains `\/`/],
    ['prune-retention', 's3-prefix', '../x', /`\.\.` segment/],
    ['verify-restore', 'database', '.', /`\.` segment/],
  ])('%s refuses %s %j', async (action, input, value, what) => {
    const before = await databases();
    const inputs: Record<string, string> = { ...s3Inputs({ [input]: value }) };
    if (action === 'pgdump-to-s3') inputs['database-url'] = pg.url(db);
    if (action === 'prune-retention') inputs['keep-last'] = '1';
    if (action === 'verify-restore') inputs['target-url'] = pg.url('postgres');
    await expectRefused(await runBundle(action, inputs), input, what, before);
  });
});

describe('checks-sql is read from the workspace, validated first, never echoed', () => {
  beforeAll(() => {
    mkdirSync(path.join(workspace, 'sub'), { recursive: true });
    const env = `DATABASE_URL=postgres://app:${PASSWORD_IN_ENV_FILE}@db.internal:5432/app\nSECRET=1\n`;
    writeFileSync(path.join(workspace, '.env'), env);
    writeFileSync(path.join(workspace, 'sub', 'env.sql'), env);
    writeFileSync(path.join(tempDir('pba-outside-'), 'x.sql'), 'SELECT true;');
  });
  test.each([
    ['../../etc/passwd', /not a `\.sql` file/],
    ['../outside.sql', /cannot read|outside the workspace/],
    ['/etc/hostname.sql', /cannot read|outside the workspace/],
    ['.env', /not a `\.sql` file/],
    ['sub/env.sql', /statement 1 of "sub\/env\.sql" does not start with an SQL command/],
  ])('refuses %s before any download or restore', async (file, what) => {
    const before = await databases();
    const run = await runBundle(
      'verify-restore',
      { ...s3Inputs(), 'target-url': pg.url('postgres'), 'checks-sql': file },
      { GITHUB_WORKSPACE: workspace },
    );
    await expectRefused(run, 'checks-sql', what, before);
    expect(run.logs).not.toContain('DATABASE_URL');
    expect(findSecretsInLogs([PASSWORD_IN_ENV_FILE])).toEqual([]);
  });
});

describe('secrets and mistakes in other inputs', () => {
  test.each([
    ['quoted', () => `"${identity}"`],
    ['lower-case', () => identity.toLowerCase()],
    ['with a comment', () => `${identity} # mine`],
  ])('an age identity pasted into age-recipients (%s) is refused and never printed', async (_, value) => {
    const before = await databases();
    const run = await backup({ 'age-recipients': value() });
    await expectRefused(run, 'age-recipients', /age identity \(secret key\)|is not an age X25519 recipient/, before);
    const bech = identity.slice('AGE-SECRET-KEY-1'.length);
    expect(findSecretsInLogs([identity, identity.toLowerCase(), bech, bech.toLowerCase()])).toEqual([]);
    expect(run.logs.toLowerCase()).not.toContain(bech.slice(0, 20).toLowerCase());
  });

  test('schemas: a pattern that matches nothing is an input error, not a bug', async () => {
    const before = await databases();
    await expectRefused(
      await backup({ schemas: 'nosuchschema' }),
      'schemas',
      /"nosuchschema" matches no schema/,
      before,
    );
  });

  test('s3-region: syntax is checked', async () => {
    const before = await databases();
    await expectRefused(await backup({ 's3-region': 'eu west 1' }), 's3-region', /is not a region name/, before);
  });

  test.each(['99999', 'abc'])('database-url with port %s names the port', async (port) => {
    const before = await databases();
    const run = await runBundle('pgdump-to-s3', {
      ...s3Inputs(),
      'database-url': `postgres://app:pw-${port}-secret@127.0.0.1:${port}/app`,
    });
    await expectRefused(run, 'database-url', /has a port that is not a number from 1 to 65535/, before);
    expect(findSecretsInLogs([`pw-${port}-secret`])).toEqual([]);
  });

  test('a host that takes the connection but never answers: the message says it timed out and after how long', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const run = await runBundle('pgdump-to-s3', {
        ...s3Inputs(),
        'database-url': `postgres://app:pw@127.0.0.1:${port}/app`,
      });
      expect(run.exitCode).toBe(1);
      expect(run.errors[0]).toMatch(/timed out after 30 s/);
      expect(run.errors[0]).toContain('`database-url`');
      expect(run.logs).not.toMatch(/Unexpected error|^\s+at /m);
      expect(await listKeys(s3.client, bucket)).toEqual([]);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 90_000);
});

describe('failure-issue keys round-trip through the hidden marker', () => {
  let gh: GitHubTestServer;
  beforeAll(async () => {
    gh = new GitHubTestServer();
    await gh.start();
  });
  afterAll(async () => gh?.stop());

  test('a key that tries to close the comment still finds its issue: one issue, then a comment', async () => {
    const key = 'nightly} --> <!-- db';
    const report = (runId: string) =>
      runBundle(
        'open-failure-issue',
        { 'github-token': gh.token, status: 'failure', key },
        { GITHUB_API_URL: gh.url, GITHUB_RUN_ID: runId },
      );
    const first = await report('501');
    expect(first.errors).toEqual([]);
    expect(first.outputs.action).toBe('created');
    const second = await report('502');
    expect(second.errors).toEqual([]);
    expect(second.outputs.action).toBe('commented');
    const mine = gh.issues.filter((i) => readState(i.body)?.key === key);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.comments).toHaveLength(1);
    expect(readState(mine[0]!.body)).toMatchObject({ key, failures: 2 });
  });
});
