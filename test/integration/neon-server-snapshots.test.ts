import pg from 'pg';
import { startPostgres, type TestPostgres } from '../harness/index.js';
import { NeonTestServer } from '../harness/neon-server.js';
import { neonSpecProblems } from '../harness/neon-spec.js';

/** The Snapshots API (beta) of the Neon test server, through plain fetch, checked against the official spec. */
let db: TestPostgres;
let neon: NeonTestServer;
let mainDb: string;

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function api(method: string, path: string, body?: unknown, key = neon.apiKey): Promise<Answer> {
  const res = await fetch(`${neon.url}/projects/${neon.projectId}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const rows = async (database: string | undefined) =>
  Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM items', database))[0]!.n);
const exists = async (database: string) =>
  (await db.query('SELECT 1 FROM pg_database WHERE datname = $$' + database + '$$')).length === 1;
const byName = (name: string) => [...neon.branches.values()].find((b) => b.name === name);

let before: { id: string; database?: string }; // the snapshot at the kept LSN (100 rows)
let restoredId: string;
let child: string;

beforeAll(async () => {
  db = await startPostgres();
  mainDb = await db.createDatabase('neonsnap');
  await db.query('CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)', mainDb);
  neon = new NeonTestServer(db);
  await neon.start(mainDb);
});
afterAll(async () => {
  await neon?.stop();
  await db?.stop();
});

test('a snapshot at a kept LSN holds the data of that point; without one, the data of now', async () => {
  const point = await neon.keepPoint();
  await db.query('DELETE FROM items WHERE id > 10', mainDb);

  const r = await api('POST', `/branches/br-main-0001/snapshot?lsn=${point.lsn}&name=before-delete`);
  expect(r.status).toBe(200);
  expect(r.body.snapshot).toMatchObject({
    name: 'before-delete',
    lsn: point.lsn,
    source_branch_id: 'br-main-0001',
    manual: true,
  });
  expect(r.body.snapshot.id).toMatch(/^snap-[a-z0-9-]{1,55}$/);
  expect(r.body.operations).toHaveLength(1);
  expect(r.body.operations[0]).toMatchObject({ branch_id: 'br-main-0001', status: 'finished' });
  before = neon.snapshots.get(r.body.snapshot.id)!;
  expect(await rows(before.database)).toBe(100);
  expect(await rows(mainDb)).toBe(10);

  const expires = new Date(Date.now() + 86400_000).toISOString();
  const now = await api('POST', `/branches/br-main-0001/snapshot?expires_at=${encodeURIComponent(expires)}`);
  expect(now.status).toBe(200);
  expect(now.body.snapshot.name).toMatch(/^main \d{4}-\d\d-\d\dT/);
  expect(now.body.snapshot.expires_at).toBe(expires);
  expect(await rows(neon.snapshots.get(now.body.snapshot.id)!.database)).toBe(10);
});

test('slow and failing operations come from the same machinery', async () => {
  neon.operationPolls = 2;
  const r = await api('POST', '/branches/br-main-0001/snapshot?name=slow');
  expect(r.body.operations[0].status).toBe('running');
  const op = r.body.operations[0].id;
  expect((await api('GET', `/operations/${op}`)).body.operation.status).toBe('running');
  expect((await api('GET', `/operations/${op}`)).body.operation.status).toBe('running');
  expect((await api('GET', `/operations/${op}`)).body.operation.status).toBe('finished');
  neon.operationPolls = 0;
  neon.failOperations = true;
  const doomed = await api('DELETE', `/snapshots/${r.body.snapshot.id}`);
  expect(doomed.status).toBe(202);
  expect((await api('GET', `/operations/${doomed.body.operations[0].id}`)).body.operation.status).toBe('failed');
  neon.failOperations = false;
});

test('lists and renames snapshots; scheduled ones are not manual', async () => {
  const scheduled = await neon.addScheduledSnapshot({ name: 'nightly', fullSize: 1234 });
  expect(await rows(scheduled.database)).toBe(10);
  const list = await api('GET', '/snapshots');
  expect(list.status).toBe(200);
  expect(list.body.snapshots.map((s: { name: string }) => s.name)).toEqual(
    expect.arrayContaining(['before-delete', 'nightly']),
  );
  expect(list.body.snapshots.find((s: { id: string }) => s.id === scheduled.id)).toMatchObject({
    manual: false,
    full_size: 1234,
  });

  const r = await api('PATCH', `/snapshots/${before.id}`, { snapshot: { name: 'before-the-incident' } });
  expect(r.status).toBe(200);
  expect(r.body.snapshot).toMatchObject({ id: before.id, name: 'before-the-incident' });
  expect(neon.snapshots.get(before.id)!.name).toBe('before-the-incident');
  expect((await api('PATCH', '/snapshots/snap-nope', { snapshot: { name: 'x' } })).status).toBe(404);
});

test('refuses an unknown branch, a child branch, and lsn with timestamp', async () => {
  expect((await api('POST', '/branches/br-nope/snapshot')).status).toBe(404);
  const created = await api('POST', '/branches', { branch: { name: 'child' } });
  expect(created.status).toBe(201);
  child = created.body.branch.id;
  const r = await api('POST', `/branches/${child}/snapshot`);
  expect(r.status).toBe(400);
  expect(r.body.message).toBe('snapshots can only be created from root branches');
  const both = await api('POST', `/branches/br-main-0001/snapshot?lsn=0/1&timestamp=${new Date().toISOString()}`);
  expect(both.status).toBe(400);
});

test('refuses a snapshot beyond the limit, with a message naming it', async () => {
  const count = neon.snapshots.size;
  neon.snapshotLimit = count;
  try {
    const r = await api('POST', '/branches/br-main-0001/snapshot?name=one-too-many');
    expect(r.status).toBe(422);
    expect(r.body.message).toContain(`snapshot limit of ${count} reached`);
    expect(neon.snapshots.size).toBe(count);
  } finally {
    neon.snapshotLimit = 10;
  }
});

test('restores a snapshot to a new branch that holds its data', async () => {
  expect((await api('POST', '/snapshots/snap-nope/restore', {})).status).toBe(404);
  expect((await api('POST', `/snapshots/${before.id}/restore`, { target_branch_id: 'br-nope' })).status).toBe(404);
  const r = await api('POST', `/snapshots/${before.id}/restore`, { name: 'main-restored' });
  expect(r.status).toBe(200);
  expect(r.body.branch).toMatchObject({ name: 'main-restored', restored_from: before.id, restore_status: 'restored' });
  expect(r.body.branch.id).toMatch(/^br-/);
  expect(r.body.branch.parent_id).toBeUndefined();
  expect(r.body.operations).toHaveLength(1);
  restoredId = r.body.branch.id;
  expect(await rows(neon.branches.get(restoredId)!.database)).toBe(100);
  expect(byName('main')!.id).toBe('br-main-0001');
});

test('finalizing makes the restored branch act as main, and the old one is renamed; only once', async () => {
  const r = await api('POST', `/branches/${restoredId}/finalize_restore`);
  expect(r.status).toBe(200);
  expect(r.body.operations).toHaveLength(1);

  const main = (await api('GET', '/branches')).body.branches.find((b: { name: string }) => b.name === 'main');
  expect(main).toMatchObject({
    id: restoredId,
    default: true,
    restored_from: before.id,
    restored_as: 'br-main-0001',
    restore_status: 'finalized',
  });
  const old = (await api('GET', '/branches/br-main-0001')).body.branch;
  expect(old.name).toMatch(/^main_old_\d{4}-\d\d-\d\dT/);
  expect(old.default).toBe(false);

  const uri = (await api('GET', `/connection_uri?branch_id=${main.id}&database_name=neondb&role_name=neondb_owner`))
    .body.uri;
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    expect(Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]!.n)).toBe(100);
  } finally {
    await client.end();
  }
  expect(await rows(mainDb)).toBe(10); // the old branch keeps its data

  const again = await api('POST', `/branches/${restoredId}/finalize_restore`, { name: 'whatever' });
  expect(again.status).toBe(400);
  expect(again.body.message).toMatch(/already finalized/);
  const never = await api('POST', `/branches/${child}/finalize_restore`);
  expect(never.status).toBe(400);
  expect(never.body.message).toMatch(/not created by restoring a snapshot/);
  expect((await api('POST', '/branches/br-nope/finalize_restore')).status).toBe(404);
});

test('a restore with finalize_restore replaces its target at once; the old one takes the given name', async () => {
  const r = await api('POST', `/snapshots/${before.id}/restore`, {
    name: 'child-restored',
    target_branch_id: child,
    finalize_restore: true,
  });
  expect(r.status).toBe(200);
  expect(r.body.branch).toMatchObject({ name: 'child', restored_as: child, restore_status: 'finalized' });
  expect(r.body.operations).toHaveLength(2);
  expect(neon.branches.get(child)!.name).toMatch(/^child_old_/);

  const other = await api('POST', `/snapshots/${before.id}/restore`, { target_branch_id: r.body.branch.id });
  const fin = await api('POST', `/branches/${other.body.branch.id}/finalize_restore`, { name: 'child-previous' });
  expect(fin.status).toBe(200);
  expect(neon.branches.get(r.body.branch.id)!.name).toBe('child-previous');
  expect(neon.branches.get(other.body.branch.id)!.name).toBe('child');
});

test('backup schedules: empty by default, a valid one is stored and read back, an invalid one is refused', async () => {
  const empty = await api('GET', '/branches/br-main-0001/backup_schedule');
  expect(empty).toEqual({ status: 200, body: { schedule: [] } });
  expect((await api('GET', '/branches/br-nope/backup_schedule')).status).toBe(404);

  const schedule = [
    { frequency: 'daily', hour: 3, retention_seconds: 7 * 86400 },
    { frequency: 'monthly', day: 1, hour: 2, retention_seconds: 365 * 86400 },
  ];
  const put = await api('PUT', '/branches/br-main-0001/backup_schedule', { schedule });
  expect(put).toEqual({ status: 200, body: {} });
  expect((await api('GET', '/branches/br-main-0001/backup_schedule')).body).toEqual({ schedule });
  expect(neon.schedules.get('br-main-0001')).toEqual(schedule);
  expect(neon.requests.filter((q) => q.method === 'PUT').at(-1)).toMatchObject({
    path: `/api/v2/projects/${neon.projectId}/branches/br-main-0001/backup_schedule`,
    body: { schedule },
  });

  for (const [item, message] of [
    [{ frequency: 'daily', retention_seconds: 60 }, /retention_seconds must be an integer of at least 3600/],
    [{ frequency: 'fortnightly' }, /frequency must be one of hourly, daily, weekly, monthly, yearly/],
    [{ frequency: 'daily', hour: 24 }, /hour must be an integer from 0 to 23/],
    [{ frequency: 'monthly', day: 0 }, /day must be an integer from 1 to 31/],
    [{ frequency: 'yearly', month: 13 }, /month must be an integer from 1 to 12/],
  ] as const) {
    const bad = await api('PUT', '/branches/br-main-0001/backup_schedule', { schedule: [item] });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(message);
  }
  expect((await api('PUT', '/branches/br-main-0001/backup_schedule', {})).status).toBe(400);
  expect(neon.schedules.get('br-main-0001')).toEqual(schedule);
});

test('deleting a snapshot drops its database; a second delete is 404', async () => {
  const database = before.database!;
  expect(await exists(database)).toBe(true);
  const r = await api('DELETE', `/snapshots/${before.id}`);
  expect(r.status).toBe(202);
  expect(r.body.operations).toHaveLength(1);
  expect(await exists(database)).toBe(false);
  expect(neon.snapshots.has(before.id)).toBe(false);
  expect((await api('GET', '/snapshots')).body.snapshots.some((s: { id: string }) => s.id === before.id)).toBe(false);
  expect((await api('DELETE', `/snapshots/${before.id}`)).status).toBe(404);
  // the branches restored from it keep their own copies
  expect(await rows(neon.branches.get(restoredId)!.database)).toBe(100);
});

test('injected faults and the API key check apply to the new routes', async () => {
  neon.inject({ method: 'GET', path: /\/snapshots$/, status: 503, times: 1 });
  neon.inject({ method: 'PUT', path: /\/backup_schedule$/, status: 423, times: 1 });
  expect((await api('GET', '/snapshots')).status).toBe(503);
  expect((await api('GET', '/snapshots')).status).toBe(200);
  expect((await api('PUT', '/branches/br-main-0001/backup_schedule', { schedule: [] })).status).toBe(423);
  neon.inject({ method: 'POST', path: /\/snapshot$/, drop: true, afterApply: true, times: 1 });
  const n = neon.snapshots.size;
  await expect(api('POST', '/branches/br-main-0001/snapshot?name=lost')).rejects.toThrow();
  expect(neon.snapshots.size).toBe(n + 1);
  const denied = await api('GET', '/snapshots', undefined, 'wrong-key');
  expect(denied.status).toBe(401);
  expect((await api('POST', '/branches/br-main-0001/snapshot', undefined, 'wrong-key')).status).toBe(401);
  expect(neon.snapshots.size).toBe(n + 1);
});

test("every response of the test server matches Neon's OpenAPI spec", () => {
  const { problems, templates } = neonSpecProblems(neon.responses);
  expect(problems).toEqual([]);
  expect(templates).toEqual(
    expect.arrayContaining([
      '/projects/{project_id}/branches/{branch_id}/snapshot post 200',
      '/projects/{project_id}/snapshots get 200',
      '/projects/{project_id}/snapshots/{snapshot_id} patch 200',
      '/projects/{project_id}/snapshots/{snapshot_id} delete 202',
      '/projects/{project_id}/snapshots/{snapshot_id}/restore post 200',
      '/projects/{project_id}/branches/{branch_id}/finalize_restore post 200',
      '/projects/{project_id}/branches/{branch_id}/backup_schedule get 200',
      '/projects/{project_id}/branches/{branch_id}/backup_schedule put 200',
    ]),
  );
  expect(neon.responses.filter((r) => r.template === 'default').map((r) => r.status)).toEqual(
    expect.arrayContaining([400, 401, 404, 422, 423, 503]),
  );
});
