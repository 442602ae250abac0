// Neon's Snapshots API through the neon-snapshot and prune-retention bundles (and the CLI), against the Neon test
// server backed by real databases: a snapshot at an LSN holds that point's rows, a restore's branch holds the
// snapshot's rows, a finalized restore makes the target's name answer with them.
import { findSecretsInLogs, runBundle, runCli, startPostgres, type TestPostgres } from '../harness/index.js';
import { NeonTestServer, type SnapshotState } from '../harness/neon-server.js';
import { neonSpecProblems } from '../harness/neon-spec.js';

let db: TestPostgres;
let neon: NeonTestServer;
let mainDb: string;

const env = { PBA_NEON_POLL_MS: '20', PBA_NEON_RETRY_BASE_MS: '20' };
const base = () => ({ 'neon-api-key': neon.apiKey, 'neon-project-id': neon.projectId, 'neon-api-host': neon.url });
const action = (inputs: Record<string, string>) => runBundle('neon-snapshot', { ...base(), ...inputs }, env);
const requests = (method: string, path: RegExp) =>
  neon.requests.filter((r) => r.method === method && path.test(r.path));
const rows = async (database: string | undefined) =>
  Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM items', database!))[0]!.n);
const branchNamed = (name: string) => [...neon.branches.values()].find((b) => b.name === name);
const isoNow = (offsetMs = 0) => new Date(Date.now() + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The snapshot taken at the point where `items` held 100 rows (main holds 60 afterwards). */
let at100: SnapshotState;

beforeAll(async () => {
  db = await startPostgres();
  mainDb = await db.createDatabase('snapmain');
  await db.query('CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)', mainDb);
  neon = new NeonTestServer(db);
  await neon.start(mainDb);
});
afterAll(async () => {
  await neon?.stop();
  await db?.stop();
});
beforeEach(() => {
  neon.faults = [];
  neon.operationPolls = 0;
  neon.failOperations = false;
});

describe('method: snapshot', () => {
  test('at an LSN, with an expiry: the snapshot holds the rows of that point', async () => {
    const point = await neon.keepPoint();
    await db.query('DELETE FROM items WHERE id > 60', mainDb);
    const run = await action({ method: 'snapshot', lsn: point.lsn, name: 'backup-at-lsn', 'expires-in': '45d' });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ created: 'true', 'branch-name': 'main', 'parent-lsn': point.lsn });
    at100 = neon.snapshots.get(run.outputs['snapshot-id']!)!;
    expect(at100).toMatchObject({ name: 'backup-at-lsn', lsn: point.lsn, manual: true });
    // No 30-day cap as for branches: the Snapshots API states none.
    expect(Math.abs(Date.parse(at100.expires_at!) - (Date.now() + 45 * 86400_000))).toBeLessThan(60_000);
    expect(await rows(at100.database)).toBe(100);
    expect(await rows(mainDb)).toBe(60);
    expect(run.outputs['expires-at']).toBe(at100.expires_at);
    expect(run.summary).toContain(`snapshot: ${at100.id}`);
  });

  test('at a timestamp, named after it by default', async () => {
    // The test server branches at kept points only: keep one, then ask for a time just after it.
    await neon.keepPoint();
    await new Promise((r) => setTimeout(r, 1100));
    const ts = isoNow();
    const run = await action({ method: 'snapshot', timestamp: ts });
    expect(run.errors).toEqual([]);
    const post = requests('POST', /\/branches\/br-main-0001\/snapshot/).at(-1)!;
    expect(post.path).toContain(`timestamp=${encodeURIComponent(ts)}`);
    expect(neon.snapshots.get(run.outputs['snapshot-id']!)!.name).toBe(`backup-${ts.replace(/[-:]/g, '')}`);
  });

  test('a re-run with the same name reuses the snapshot', async () => {
    const before = requests('POST', /\/snapshot\b/).length;
    const run = await action({ method: 'snapshot', name: 'backup-at-lsn' });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ created: 'false', 'snapshot-id': at100.id });
    expect(requests('POST', /\/snapshot\b/).length).toBe(before);
  });

  test('a child branch is refused before the API is asked', async () => {
    const child = await action({ name: 'child-branch' }); // method: branch
    expect(child.errors).toEqual([]);
    const before = requests('POST', /\/snapshot\b/).length;
    const run = await action({ method: 'snapshot', branch: 'child-branch' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Input `branch`: "child-branch" is not a root branch.*root branches only/);
    expect(requests('POST', /\/snapshot\b/).length).toBe(before);
  });

  test("the project's snapshot limit: the error names it and says how to make room", async () => {
    const saved = neon.snapshotLimit;
    neon.snapshotLimit = neon.snapshots.size;
    try {
      const run = await action({ method: 'snapshot', name: 'one-too-many' });
      expect(run.exitCode).toBe(1);
      const text = run.errors.join('\n');
      expect(text).toMatch(/snapshot limit of \d+ reached/);
      expect(text).toContain('`target: neon-snapshots`');
      expect(text).toContain('`mode: schedule`');
      expect(run.logs).not.toMatch(/^\s+at /m);
    } finally {
      neon.snapshotLimit = saved;
    }
  });

  test('423 and 429 on create go through the one retry policy', async () => {
    neon.inject({ method: 'POST', path: /\/snapshot$/, status: 423, times: 2 });
    neon.inject({ method: 'POST', path: /\/snapshot$/, status: 429, retryAfter: '1', times: 1 });
    const run = await action({ method: 'snapshot', name: 'busy-project' });
    expect(run.errors).toEqual([]);
    expect(run.logs).toMatch(/creating snapshot busy-project failed .*retry 3 in/);
    expect([...neon.snapshots.values()].filter((s) => s.name === 'busy-project')).toHaveLength(1);
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['create-endpoint', { 'create-endpoint': 'true' }, /Input `create-endpoint`: does not apply to `method: snapshot`/],
    ['a past expires-at', { 'expires-at': '2020-01-01T00:00:00Z' }, /Input `expires-at`: .* is not in the future/],
    ['method snapshot with mode restore', { mode: 'restore', branch: 'main' }, /Input `method`: `snapshot` applies/],
  ])('%s is refused before any API call', async (_label, inputs, message) => {
    const before = neon.requests.length;
    const run = await action({ method: 'snapshot', ...inputs });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
    expect(neon.requests.length).toBe(before);
  });
});

describe('mode: restore-snapshot and finalize-restore', () => {
  test('into a new branch: it holds the snapshot, nothing else changes', async () => {
    const run = await action({ mode: 'restore-snapshot', snapshot: at100.id, name: 'inspect-1' });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ 'branch-name': 'inspect-1', finalized: 'false', 'snapshot-id': at100.id });
    const body = requests('POST', /\/snapshots\/[^/]+\/restore$/).at(-1)!.body as Record<string, unknown>;
    expect(body).toEqual({ name: 'inspect-1', finalize_restore: false });
    expect(await rows(branchNamed('inspect-1')!.database)).toBe(100);
    expect(branchNamed('main')!.id).toBe('br-main-0001');
    expect(await rows(branchNamed('main')!.database)).toBe(60);
  });

  test('by name, onto main without finalize, then finalize-restore: main answers with the snapshot', async () => {
    const restore = await action({ mode: 'restore-snapshot', snapshot: 'backup-at-lsn', 'target-branch': 'main' });
    expect(restore.errors).toEqual([]);
    expect(restore.outputs.finalized).toBe('false');
    const restored = restore.outputs['branch-id']!;
    expect(requests('POST', /\/restore$/).at(-1)!.body).toMatchObject({ target_branch_id: 'br-main-0001' });
    // Left for inspection: main is untouched, the summary gives the step that finishes it.
    expect(branchNamed('main')!.id).toBe('br-main-0001');
    expect(restore.summary).toContain('mode: finalize-restore');
    expect(restore.summary).toContain(`branch: ${restored}`);

    const wrong = await action({ mode: 'finalize-restore', branch: restored, confirm: 'production' });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.errors.join('\n')).toContain('set `confirm` to exactly `main`');
    expect(requests('POST', /\/finalize_restore$/)).toHaveLength(0);

    const fin = await action({
      mode: 'finalize-restore',
      branch: restored,
      confirm: 'main',
      'preserve-under-name': 'main-before-snapshot',
    });
    expect(fin.errors).toEqual([]);
    expect(fin.outputs).toMatchObject({ finalized: 'true', 'branch-id': restored, 'branch-name': 'main' });
    expect(branchNamed('main')!.id).toBe(restored);
    expect(await rows(branchNamed('main')!.database)).toBe(100);
    expect(branchNamed('main-before-snapshot')!.id).toBe('br-main-0001');
    expect(fin.outputs['preserved-branch-id']).toBe('br-main-0001');

    const again = await action({ mode: 'finalize-restore', branch: restored, confirm: 'main' });
    expect(again.exitCode).toBe(1);
    expect(again.errors.join('\n')).toMatch(/already finalized/);
  });

  test('onto a branch with finalize: true, in one run; a wrong confirm changes nothing', async () => {
    await db.query('DELETE FROM items WHERE id > 10', branchNamed('main')!.database!);
    const before = requests('POST', /\/restore$/).length;
    const refused = await action({
      mode: 'restore-snapshot',
      snapshot: at100.id,
      'target-branch': 'main',
      finalize: 'true',
      confirm: 'staging',
    });
    expect(refused.exitCode).toBe(1);
    expect(refused.errors.join('\n')).toContain('set `confirm` to exactly `main`');
    expect(requests('POST', /\/restore$/).length).toBe(before);

    const mainBefore = branchNamed('main')!.id;
    const run = await action({
      mode: 'restore-snapshot',
      snapshot: at100.id,
      'target-branch': 'main',
      finalize: 'true',
      confirm: 'main',
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.finalized).toBe('true');
    expect(branchNamed('main')!.id).toBe(run.outputs['branch-id']);
    expect(await rows(branchNamed('main')!.database)).toBe(100);
    const kept = [...neon.branches.values()].find((b) => b.id === mainBefore)!;
    expect(kept.name).toMatch(/^main-before-restore-\d{8}T\d{6}Z$/);
    expect(await rows(kept.database)).toBe(10);
    expect(run.summary).toContain(kept.name);
  });

  test.each<[string, Record<string, string>, RegExp]>([
    ['finalize without target-branch', { snapshot: 'x', finalize: 'true' }, /Input `finalize`: is `true` without/],
    ['finalize without confirm', { snapshot: 'x', finalize: 'true', 'target-branch': 'main' }, /Input `confirm`/],
    ['no snapshot', {}, /`snapshot`/],
    ['a timestamp', { snapshot: 'x', timestamp: isoNow() }, /Input `timestamp`: does not apply/],
  ])('%s is refused before any API call', async (_label, inputs, message) => {
    const before = neon.requests.length;
    const run = await action({ mode: 'restore-snapshot', ...inputs });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
    expect(neon.requests.length).toBe(before);
  });

  test('an unknown snapshot is named with the newest ones', async () => {
    const run = await action({ mode: 'restore-snapshot', snapshot: 'no-such-snapshot' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/no snapshot "no-such-snapshot".*Newest: .*backup-at-lsn/);
  });
});

describe('mode: schedule', () => {
  const schedule = 'daily 02:00 keep 7d\nweekly sun 03:00 keep 4w\nmonthly 1 04:00 keep 12mo';
  const puts = () => requests('PUT', /\/backup_schedule$/);

  test('dry run shows the difference and changes nothing; apply sets it; a re-run changes nothing', async () => {
    const dry = await action({ mode: 'schedule', schedule, 'dry-run': 'true' });
    expect(dry.errors).toEqual([]);
    expect(dry.outputs['schedule-changed']).toBe('true');
    expect(dry.summary).toContain('+ daily 02:00 keep 1w'); // 7d, written in the largest exact unit
    expect(puts()).toHaveLength(0);

    const apply = await action({ mode: 'schedule', schedule });
    expect(apply.errors).toEqual([]);
    expect(apply.outputs['schedule-changed']).toBe('true');
    expect(puts()).toHaveLength(1);
    const mainId = branchNamed('main')!.id;
    expect(puts()[0]!.path).toContain(`/branches/${mainId}/backup_schedule`);
    expect(neon.schedules.get(mainId)).toEqual([
      { frequency: 'daily', hour: 2, retention_seconds: 7 * 86400 },
      { frequency: 'weekly', day: 7, hour: 3, retention_seconds: 28 * 86400 },
      { frequency: 'monthly', day: 1, hour: 4, retention_seconds: expect.any(Number) },
    ]);

    const again = await action({ mode: 'schedule', schedule: schedule.split('\n').reverse().join('\n') });
    expect(again.errors).toEqual([]);
    expect(again.outputs['schedule-changed']).toBe('false');
    expect(puts()).toHaveLength(1);

    const off = await action({ mode: 'schedule', schedule: 'off' });
    expect(off.errors).toEqual([]);
    expect(neon.schedules.get(mainId)).toEqual([]);
  });

  test.each<[string, RegExp]>([
    ['daily 02:30 keep 7d', /on the hour/],
    ['hourly keep 30m', /at least 1 hour.*months are `mo`/],
    ['fortnightly 02:00 keep 7d', /hourly.*daily.*weekly.*monthly.*yearly/],
    ['monthly 32 04:00 keep 1y', /day/],
    ['', /off/],
  ])('"%s" is refused before any API call', async (line, message) => {
    const before = neon.requests.length;
    const run = await action({ mode: 'schedule', schedule: line });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Input `schedule`/);
    expect(run.errors.join('\n')).toMatch(message);
    expect(neon.requests.length).toBe(before);
  });

  test('the CLI: neon-schedule --dry-run', async () => {
    const out = await runCli(
      [
        'neon-schedule',
        '--neon-api-key',
        neon.apiKey,
        '--neon-project-id',
        neon.projectId,
        '--neon-api-host',
        neon.url,
        '--schedule',
        'hourly keep 24h',
        '--dry-run',
      ],
      env,
    );
    expect(out.stderr).not.toContain(neon.apiKey);
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ 'schedule-changed': 'true' });
  });
});

describe('prune-retention target: neon-snapshots', () => {
  const prune = (inputs: Record<string, string>) =>
    runBundle('prune-retention', { ...base(), target: 'neon-snapshots', ...inputs }, env);
  const day = 86400_000;

  function seed(name: string, daysAgo: number, manual = true): SnapshotState {
    const t = new Date(Date.now() - daysAgo * day).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const s: SnapshotState = {
      id: `snap-seed-${name}`,
      name,
      created_at: t,
      timestamp: t,
      lsn: '0/1000000',
      source_branch_id: branchNamed('main')!.id,
      manual,
      full_size: 1000,
    };
    neon.snapshots.set(s.id, s);
    return s;
  }

  test('a failed listing deletes nothing', async () => {
    seed('nightly-old-1', 40);
    neon.inject({ method: 'GET', path: /\/snapshots$/, status: 500, times: 100 });
    const before = neon.snapshots.size;
    const run = await prune({ 'branch-prefix': 'nightly-', 'keep-last': '1' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Listing the snapshots of .* failed, so nothing was deleted/);
    expect(neon.snapshots.size).toBe(before);
  });

  test('manual snapshots with the prefix only; scheduled ones untouched; dry run first', async () => {
    neon.faults = [];
    for (const d of [30, 20, 10, 5, 2]) seed(`nightly-${d}`, d);
    seed('nightly-scheduled', 50, false);
    seed('adhoc-keep-me', 60);
    const dry = await prune({ 'branch-prefix': 'nightly-', 'keep-last': '2', 'dry-run': 'true' });
    expect(dry.errors).toEqual([]);
    expect(dry.outputs).toMatchObject({ kept: '2', deleted: '4' }); // nightly-old-1 (40 d) and 30, 20, 10
    expect(neon.snapshots.has('snap-seed-nightly-30')).toBe(true);

    const run = await prune({ 'branch-prefix': 'nightly-', 'keep-last': '2' });
    expect(run.errors).toEqual([]);
    const left = [...neon.snapshots.values()].map((s) => s.name);
    expect(left).toEqual(expect.arrayContaining(['nightly-5', 'nightly-2', 'nightly-scheduled', 'adhoc-keep-me']));
    for (const gone of ['nightly-old-1', 'nightly-30', 'nightly-20', 'nightly-10']) expect(left).not.toContain(gone);
    expect(run.summary).toMatch(/taken by the backup schedule/);
    expect(requests('DELETE', /\/snapshots\/snap-seed-nightly-scheduled$/)).toHaveLength(0);
  });

  test('the newest snapshot is kept whatever the policy', async () => {
    const run = await prune({ 'branch-prefix': 'nightly-', 'keep-within': '1h' });
    expect(run.errors).toEqual([]);
    const left = [...neon.snapshots.values()].map((s) => s.name).filter((n) => n.startsWith('nightly-'));
    expect(left).toEqual(expect.arrayContaining(['nightly-2', 'nightly-scheduled']));
    expect(left).not.toContain('nightly-5');
  });
});

test('the API key is in no log, and every response matches the spec', () => {
  expect(findSecretsInLogs([neon.apiKey, db.password])).toEqual([]);
  const { problems } = neonSpecProblems(neon.responses);
  expect(problems).toEqual([]);
});
