import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  cliArgs,
  listKeys,
  openMultipartUploads,
  runBundle,
  s3TestInputs,
  startBundle,
  startCli,
  startPostgres,
  startS3,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { HoldingProxy, runnerCancel, TreeWatch } from '../harness/cancel.js';
import { SLOW_SCHEMA_SQL, waitForActivity } from '../harness/restore-data.js';

// Cancelling each long step as GitHub's runner does (SIGINT, SIGTERM 7.5 s later, then the tree killed): the step
// must stop its children, undo what it started, say so in the summary and exit on the SIGINT alone.

let pg: TestPostgres;
let s3: TestS3;
let proxy: HoldingProxy;
let bucket: string;
let bulk: string;
let slow: string;
const work = tempDir();
// checks-sql must be a file inside the workspace (the runner's checkout).
process.env.GITHUB_WORKSPACE = work;

const s3Inputs = (endpoint = s3.endpoint) => ({
  's3-bucket': bucket,
  's3-endpoint': endpoint,
  's3-force-path-style': 'true',
});

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  proxy = new HoldingProxy(s3.endpoint);
  await proxy.start();
  bucket = await s3.createBucket('cancel');
  // ~40 MB of incompressible text: more than the upload keeps in memory (4 parts of 5 MiB in flight), so that while
  // the parts are held pg_dump is still running, blocked on its pipe (a smaller dump finishes before the cancel).
  bulk = await pg.createDatabase('bulk');
  await pg.query(
    `CREATE TABLE blob AS SELECT g AS id, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 2) i) AS t
     FROM generate_series(1, 600000) g`,
    bulk,
  );
  slow = await pg.createDatabase('slow');
  await pg.query(SLOW_SCHEMA_SQL, slow);
  const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(slow), ...s3Inputs(), database: 'slow' });
  if (run.exitCode !== 0) throw new Error(run.logs);
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([pg?.stop(), s3?.stop()]);
});

afterEach(() => proxy.reset());

async function leftoverDatabases(): Promise<string[]> {
  return (
    await pg.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%' OR datname LIKE '%\\_\\_restoring\\_%'",
    )
  ).map((r) => r.datname);
}

async function verificationRecords(): Promise<string[]> {
  return (await listKeys(s3.client, bucket, 'postgres-backups/slow/')).filter((k) => k.includes('/verifications/'));
}

describe('cancelling pgdump-to-s3', () => {
  test.each(['bundle', 'cli'])(
    'during the upload (%s): children stopped, upload aborted, no backup left',
    async (how) => {
      proxy.hold = (req) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
      const database = `bulk-${how}`;
      const run =
        how === 'bundle'
          ? startBundle('pgdump-to-s3', {
              'database-url': pg.url(bulk),
              ...s3Inputs(proxy.endpoint),
              database,
              compression: 'none',
              'part-size-mb': '5',
            })
          : startCli(
              [
                'backup',
                '--database-url',
                pg.url(bulk),
                '--s3-bucket',
                bucket,
                '--s3-endpoint',
                proxy.endpoint,
                '--s3-force-path-style',
                'true',
                '--database',
                database,
                '--compression',
                'none',
                '--part-size-mb',
                '5',
              ],
              { GITHUB_STEP_SUMMARY: path.join(work, `summary-${how}.md`) },
            );
      const tree = new TreeWatch(run.child.pid!, run.output);
      await tree.waitFor(/^pg_dump$/);
      await proxy.waitForHeld();
      expect(await openMultipartUploads(s3.client, bucket)).toBe(1);
      const outcome = await runnerCancel(run.child);
      const done = await run.done;
      expect(outcome.needed).toBe('SIGINT');
      expect(outcome.exitMs).toBeLessThan(10000);
      expect(done.exitCode).not.toBe(0);
      expect(tree.stop()).toEqual([]);
      expect([...tree.seen.values()].map((p) => p.comm)).toContain('pg_dump');
      expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
      expect(await listKeys(s3.client, bucket, `postgres-backups/${database}/`)).toEqual([]);
      const summary =
        'summary' in done
          ? done.summary
          : (await import('node:fs')).readFileSync(path.join(work, `summary-${how}.md`), 'utf8');
      expect(summary).toMatch(/cancelled/);
      expect(summary).toMatch(/aborted the multipart upload/);
    },
  );

  test('a parallel dump (jobs: 2) during its data stream: pg_dump stopped, upload aborted, pre-data deleted', async () => {
    proxy.hold = (req) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
    const database = 'bulk-parallel';
    const run = startBundle('pgdump-to-s3', {
      'database-url': pg.url(bulk),
      ...s3Inputs(proxy.endpoint),
      database,
      compression: 'none',
      'part-size-mb': '5',
      jobs: '2',
    });
    const tree = new TreeWatch(run.child.pid!, run.output);
    await proxy.waitForHeld();
    await tree.waitFor(/^pg_dump$/).catch((e: Error) => {
      throw new Error(`${e.message}\nheld: ${proxy.heldRequests.join(', ')}`);
    });
    const outcome = await runnerCancel(run.child);
    const done = await run.done;
    expect(outcome.needed).toBe('SIGINT');
    expect(done.exitCode).not.toBe(0);
    expect(tree.stop()).toEqual([]);
    expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
    expect(await listKeys(s3.client, bucket, `postgres-backups/${database}/`)).toEqual([]);
    expect(done.summary).toMatch(/aborted the multipart upload of .*data-1\.pgdump/);
    expect(done.summary).toMatch(/deleted the partial dump/);
  });
});

describe('cancelling verify-restore (verify mode)', () => {
  const verifyInputs = (extra: Record<string, string> = {}) => ({
    ...s3Inputs(proxy.endpoint),
    database: 'slow',
    'target-url': pg.url('postgres'),
    ...extra,
  });

  async function cancelAndCheck(run: ReturnType<typeof startBundle>, tree: TreeWatch, cleaned: RegExp) {
    const outcome = await runnerCancel(run.child);
    const done = await run.done;
    expect(outcome.needed).toBe('SIGINT');
    expect(outcome.exitMs).toBeLessThan(10000);
    expect(done.exitCode).not.toBe(0);
    expect(tree.stop()).toEqual([]);
    expect(done.summary).toMatch(/verify-restore cancelled/);
    expect(done.summary).toMatch(cleaned);
    expect(await leftoverDatabases()).toEqual([]);
    expect(await verificationRecords()).toEqual([]);
    return done;
  }

  test('during the download', async () => {
    proxy.hold = (req) => req.method === 'GET' && /dump\.pgdump/.test(req.url ?? '');
    const run = startBundle('verify-restore', verifyInputs());
    const tree = new TreeWatch(run.child.pid!, run.output);
    await proxy.waitForHeld();
    // The scratch database is created after the download: nothing on the server yet.
    expect(await leftoverDatabases()).toEqual([]);
    await cancelAndCheck(run, tree, /cancelled/);
  });

  test('during the restore: pg_restore and its workers stopped', async () => {
    const run = startBundle('verify-restore', verifyInputs({ jobs: '2' }));
    const tree = new TreeWatch(run.child.pid!, run.output);
    await waitForActivity(pg, "datname LIKE 'pba_verify_%' AND query LIKE 'COPY %'");
    await tree.waitFor(/^pg_restore$/);
    const done = await cancelAndCheck(run, tree, /stopped pg_restore/);
    expect(done.summary).toMatch(/dropped the scratch database/);
  });

  test('during the checks', async () => {
    const checks = path.join(work, 'slow-checks.sql');
    writeFileSync(checks, 'SELECT pg_sleep(30) IS NOT NULL AS slept;\n');
    const run = startBundle('verify-restore', verifyInputs({ 'checks-sql': checks }));
    const tree = new TreeWatch(run.child.pid!, run.output);
    await waitForActivity(pg, "datname LIKE 'pba_verify_%' AND query LIKE '%pg_sleep(30)%'");
    await cancelAndCheck(run, tree, /dropped the scratch database/);
  });

  test('the CLI, during the restore', async () => {
    const summaryFile = path.join(work, 'cli-verify-summary.md');
    const run = startCli(
      ['verify', ...cliArgs(s3TestInputs(s3.endpoint, bucket, 'slow')), '--target-url', pg.url('postgres')],
      { GITHUB_STEP_SUMMARY: summaryFile },
    );
    const tree = new TreeWatch(run.child.pid!, run.output);
    await waitForActivity(pg, "datname LIKE 'pba_verify_%' AND query LIKE 'COPY %'");
    const outcome = await runnerCancel(run.child);
    const done = await run.done;
    expect(outcome.needed).toBe('SIGINT');
    expect(done.exitCode).not.toBe(0);
    expect(done.stderr).toMatch(/verify was cancelled \(received SIGINT\).*dropped the scratch database/);
    expect(tree.stop()).toEqual([]);
    expect(await leftoverDatabases()).toEqual([]);
    expect(await verificationRecords()).toEqual([]);
  });
});
