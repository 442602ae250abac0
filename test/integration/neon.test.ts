import pg from 'pg';
import { findSecretsInLogs, fixture, runBundle, runCli, startPostgres, type TestPostgres } from '../harness/index.js';
import { NeonTestServer } from '../harness/neon-server.js';
import { neonSpecProblems } from '../harness/neon-spec.js';

let db: TestPostgres;
let neon: NeonTestServer;
let mainDb: string;

const env = { PBA_NEON_POLL_MS: '20', PBA_NEON_RETRY_BASE_MS: '20' };
const base = () => ({ 'neon-api-key': neon.apiKey, 'neon-project-id': neon.projectId, 'neon-api-host': neon.url });
const snapshot = (inputs: Record<string, string> = {}) => runBundle('neon-snapshot', { ...base(), ...inputs }, env);
const posts = (suffix: RegExp) => neon.requests.filter((r) => r.method === 'POST' && suffix.test(r.path));

beforeAll(async () => {
  db = await startPostgres();
  mainDb = await db.createDatabase('neonmain');
  await db.query(fixture('clinic.sql'), mainDb);
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

describe('neon-snapshot: snapshots', () => {
  test('now, from the default branch, annotated with the run', async () => {
    const run = await snapshot();
    expect(run.errors).toEqual([]);
    expect(run.outputs['branch-name']).toMatch(/^backup-\d{8}T\d{6}Z$/);
    expect(run.outputs.created).toBe('true');
    const b = neon.branches.get(run.outputs['branch-id']!)!;
    expect(b.parent_id).toBe('br-main-0001');
    expect(b.annotation).toMatchObject({
      'created-by': 'postgres-backup-actions',
      'github-repository': 'octo-org/app',
      'github-run-id': '4242',
    });
    expect(run.summary).toContain(`https://console.neon.tech/app/projects/${neon.projectId}/branches/${b.id}`);
  });

  test('at a timestamp, with a TTL', async () => {
    const ts = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const run = await snapshot({ timestamp: ts, 'expires-in': '7d' });
    expect(run.errors).toEqual([]);
    const body = posts(/\/branches$/).at(-1)!.body as { branch: Record<string, string> };
    expect(body.branch.parent_timestamp).toBe(ts);
    const expires = Date.parse(body.branch.expires_at!);
    expect(Math.abs(expires - (Date.now() + 7 * 86400_000))).toBeLessThan(60_000);
    expect(run.outputs['parent-timestamp']).toBe(ts);
    expect(run.outputs['expires-at']).toBe(body.branch.expires_at);
    expect(run.outputs['branch-name']).toBe(`backup-${ts.replace(/[-:]/g, '')}`);
  });

  test('at an LSN', async () => {
    const run = await snapshot({ lsn: '0/16B3748', name: 'at-lsn' });
    expect(run.errors).toEqual([]);
    expect((posts(/\/branches$/).at(-1)!.body as { branch: Record<string, string> }).branch.parent_lsn).toBe(
      '0/16B3748',
    );
    expect(run.outputs['parent-lsn']).toBe('0/16B3748');
  });

  test('a re-run with the same name reuses the branch', async () => {
    const first = await snapshot({ name: 'nightly-1' });
    const before = posts(/\/branches$/).length;
    const again = await snapshot({ name: 'nightly-1' });
    expect(again.errors).toEqual([]);
    expect(again.outputs).toMatchObject({ created: 'false', 'branch-id': first.outputs['branch-id'] });
    expect(posts(/\/branches$/).length).toBe(before);
  });

  test('with an endpoint: the connection URL really connects, and is masked', async () => {
    const run = await snapshot({ name: 'with-endpoint', 'create-endpoint': 'true' });
    expect(run.errors).toEqual([]);
    const url = run.outputs['database-url']!;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const n = (await client.query<{ n: string }>('SELECT count(*) AS n FROM visits')).rows[0]!.n;
    await client.end();
    expect(Number(n)).toBe(20000);
    expect(run.logs).not.toContain(url);
    expect(run.logs).not.toContain(db.password);
  });
});

describe('neon-snapshot: restores', () => {
  test('refuses a wrong confirm before calling restore', async () => {
    const before = posts(/\/restore$/).length;
    const run = await snapshot({
      mode: 'restore',
      branch: 'main',
      timestamp: new Date(Date.now() - 60_000).toISOString(),
      confirm: 'production',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain(
      'Input `confirm`: an in-place restore rewrites branch "main"; set `confirm` to exactly `main`',
    );
    expect(posts(/\/restore$/).length).toBe(before);
  });

  test('explains before the API does that non-root branches cannot go back in their own history', async () => {
    const snap = await snapshot({ name: 'child' });
    const before = posts(/\/restore$/).length;
    const run = await snapshot({
      mode: 'restore',
      branch: snap.outputs['branch-id']!,
      timestamp: new Date(Date.now() - 60_000).toISOString(),
      confirm: 'child',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/"child" is not a root branch \(its parent is main\)/);
    expect(posts(/\/restore$/).length).toBe(before);
  });

  test('restores the root branch to a timestamp, preserving the old state', async () => {
    const ts = new Date(Date.now() - 600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const run = await snapshot({ mode: 'restore', branch: 'main', timestamp: ts, confirm: 'main' });
    expect(run.errors).toEqual([]);
    const body = posts(/\/restore$/).at(-1)!.body as Record<string, string>;
    expect(body).toMatchObject({ source_branch_id: 'br-main-0001', source_timestamp: ts });
    expect(body.preserve_under_name).toMatch(/^main-before-restore-\d{8}T\d{6}Z$/);
    expect(neon.branches.get(run.outputs['preserved-branch-id']!)!.name).toBe(body.preserve_under_name);
  });

  test('restores main from a snapshot branch: the deleted rows come back', async () => {
    const snap = await snapshot({ name: 'before-incident' });
    await db.query('DELETE FROM visits WHERE id > 10', mainDb);
    const run = await snapshot({
      mode: 'restore',
      branch: 'main',
      'source-branch': 'before-incident',
      confirm: 'main',
      'preserve-under-name': 'main-broken',
    });
    expect(run.errors).toEqual([]);
    expect(snap.outputs.created).toBe('true');
    expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM visits', mainDb))[0]!.n)).toBe(20000);
    const broken = [...neon.branches.values()].find((b) => b.name === 'main-broken')!;
    expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM visits', broken.database))[0]!.n)).toBe(10);
  });
});

describe('neon-snapshot: faults are retried or reported', () => {
  test('423 and 429 with Retry-After on create are retried', async () => {
    neon.inject({ method: 'POST', path: /\/branches$/, status: 423, times: 2 });
    neon.inject({ method: 'POST', path: /\/branches$/, status: 429, retryAfter: '1', times: 1 });
    const t0 = Date.now();
    const run = await snapshot({ name: 'locked' });
    expect(run.errors).toEqual([]);
    expect(run.logs).toMatch(/retry 1 in/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // Retry-After honoured
    expect([...neon.branches.values()].filter((b) => b.name === 'locked')).toHaveLength(1);
  });

  test('503 and a dropped connection on reads are retried', async () => {
    neon.inject({ method: 'GET', path: /^\/projects\/[^/]+$/, status: 503, times: 2 });
    neon.inject({ method: 'GET', path: /\/branches$/, drop: true, times: 1 });
    const run = await snapshot({ name: 'flaky-reads' });
    expect(run.errors).toEqual([]);
    expect(run.outputs.created).toBe('true');
  });

  test('a create whose response is lost is not repeated blindly: the branch is found by name', async () => {
    neon.inject({ method: 'POST', path: /\/branches$/, drop: true, afterApply: true, times: 1 });
    const run = await snapshot({ name: 'lost-response' });
    expect(run.errors).toEqual([]);
    expect(run.logs).toContain('failed in transit, but branch "lost-response" exists');
    expect([...neon.branches.values()].filter((b) => b.name === 'lost-response')).toHaveLength(1);
  });

  test('slow operations are waited for', async () => {
    neon.operationPolls = 4;
    const run = await snapshot({ name: 'slow' });
    expect(run.errors).toEqual([]);
    expect(neon.requests.filter((r) => r.path.includes('/operations/')).length).toBeGreaterThanOrEqual(5);
  });

  test("a failed operation fails the step with the operation's own error", async () => {
    neon.failOperations = true;
    const run = await snapshot({ name: 'doomed' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Neon operation create_timeline \(.*\) failed: simulated timeline failure/);
  });

  test('operations that outlast the timeout are reported', async () => {
    neon.operationPolls = 1000;
    const run = await snapshot({ name: 'forever', timeout: '1s' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Neon operations still running after 1 s \(`timeout`\)/);
  });

  test('a bad API key is named', async () => {
    const run = await snapshot({ 'neon-api-key': 'wrong-key' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('check that `neon-api-key` is a valid API key');
  });
});

describe('neon-snapshot: bad inputs are named before any call', () => {
  const future = new Date(Date.now() + 3600_000).toISOString();
  const ancient = new Date(Date.now() - 30 * 86400_000).toISOString();
  test.each<[Record<string, string>, RegExp]>([
    [{ timestamp: future }, /Input `timestamp`: .* is in the future/],
    [
      { timestamp: ancient },
      /Input `timestamp`: .* is outside the project's history window of 168 h 0 min \(oldest restorable point: /,
    ],
    [{ timestamp: '2026-11-21 02:00' }, /Input `timestamp`: "2026-11-21 02:00" is not an RFC 3339 time/],
    [{ timestamp: new Date().toISOString(), lsn: '0/1' }, /Input `lsn`: is set together with `timestamp`/],
    [{ lsn: 'latest' }, /Input `lsn`: "latest" is not an LSN/],
    [{ 'expires-in': '31d' }, /Input `expires-in`: "31d" is not between 1 second and 30 days/],
    [{ 'expires-in': '1d', 'expires-at': future }, /Input `expires-at`: is set together with `expires-in`/],
    [{ 'neon-project-id': 'Not A Project' }, /Input `neon-project-id`: "Not A Project" is not a Neon project id/],
    [{ mode: 'rollback' }, /Input `mode`: "rollback" is not one of/],
    [{ 'neon-api-key': '' }, /Input `neon-api-key`: is required but empty/],
    [{ branch: 'nope' }, /Input `branch`: no branch "nope"/],
    [
      { mode: 'restore', branch: 'main', confirm: 'main' },
      /restoring a branch to its own history needs `timestamp` or `lsn`/,
    ],
  ])('%j', async (inputs, message) => {
    const before = neon.requests.filter((r) => r.method !== 'GET').length;
    const run = await snapshot(inputs);
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
    expect(run.logs).not.toMatch(/\n\s+at /);
    expect(neon.requests.filter((r) => r.method !== 'GET').length).toBe(before);
  });
});

test('the CLI takes the same options', async () => {
  const out = await runCli(
    [
      'neon-snapshot',
      '--neon-api-key',
      neon.apiKey,
      '--neon-project-id',
      neon.projectId,
      '--neon-api-host',
      neon.url,
      '--name',
      'from-cli',
    ],
    env,
  );
  expect(out.exitCode).toBe(0);
  expect(JSON.parse(out.stdout)).toMatchObject({ 'branch-name': 'from-cli', created: 'true' });
  expect(out.stderr).not.toContain(neon.apiKey);
});

test("every response of the test server matches Neon's OpenAPI spec (from @neondatabase/api-client)", () => {
  expect(neon.responses.length).toBeGreaterThan(50);
  const { problems, templates } = neonSpecProblems(neon.responses);
  expect(problems).toEqual([]);
  expect(templates).toEqual(
    [
      '/projects/{project_id} get 200',
      '/projects/{project_id}/branches get 200',
      '/projects/{project_id}/branches post 201',
      '/projects/{project_id}/branches/{branch_id} get 200',
      '/projects/{project_id}/branches/{branch_id}/restore post 200',
      '/projects/{project_id}/connection_uri get 200',
      '/projects/{project_id}/operations/{operation_id} get 200',
    ].sort(),
  );
});

test('the API key is absent from every log line', () => {
  expect(findSecretsInLogs([neon.apiKey, db.password])).toEqual([]);
});

describe('prune-retention on Neon snapshot branches', () => {
  const prune = (inputs: Record<string, string>) =>
    runBundle('prune-retention', { target: 'neon', ...base(), 'branch-prefix': 'snap-', ...inputs }, env);

  function addBranch(
    name: string,
    daysAgo: number,
    extra: Partial<{ protected: boolean; parent_id: string | undefined; default: boolean }> = {},
  ) {
    const id = `br-${name}`;
    const t = new Date(Date.now() - daysAgo * 86400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    neon.branches.set(id, {
      id,
      name,
      parent_id: 'br-main-0001',
      parent_timestamp: t,
      default: false,
      protected: false,
      created_at: t,
      ...extra,
    });
    return id;
  }

  test('keeps by policy, never touches protected, root, parent or unprefixed branches; dry-run deletes nothing', async () => {
    for (let d = 0; d < 10; d++) addBranch(`snap-${d}`, d + 0.5);
    addBranch('snap-protected', 20, { protected: true });
    addBranch('snap-root', 21, { parent_id: undefined });
    const parent = addBranch('snap-parent', 22);
    neon.branches.set('br-snap-child-of-parent', {
      id: 'br-child',
      name: 'feature-x',
      parent_id: parent,
      default: false,
      protected: false,
      created_at: new Date().toISOString(),
    });
    addBranch('other-9', 30);

    const dry = await prune({ 'keep-daily': '3', 'dry-run': 'true' });
    expect(dry.errors).toEqual([]);
    expect(dry.outputs.deleted).toBe('7');
    expect(neon.branches.has('br-snap-9')).toBe(true);

    neon.inject({ method: 'DELETE', path: /br-snap-5$/, drop: true, afterApply: true, times: 1 }); // lost answer: retried, 204
    const run = await prune({ 'keep-daily': '3' });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ kept: '3', deleted: '7' });
    const left = [...neon.branches.values()]
      .map((b) => b.name)
      .filter((n) => n.startsWith('snap-'))
      .sort();
    expect(left).toEqual(['snap-0', 'snap-1', 'snap-2', 'snap-parent', 'snap-protected', 'snap-root']);
    expect([...neon.branches.values()].some((b) => b.name === 'other-9')).toBe(true);
    expect(run.summary).toContain('a protected branch, never deleted');
    expect(run.summary).toContain('a branch with children, never deleted');
  });

  test('no rule is an error; a failed listing deletes nothing', async () => {
    expect((await prune({})).errors.join('\n')).toContain('No keep rule is set');
    addBranch('snap-old', 40);
    neon.inject({ method: 'GET', path: /\/branches$/, status: 500, times: 100 });
    const run = await prune({ 'keep-last': '1' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Listing the branches of .* failed, so nothing was deleted/);
    expect(neon.branches.has('br-snap-old')).toBe(true);
  });
});
