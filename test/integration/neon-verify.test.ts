import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  findSecretsInLogs,
  fixture,
  getObjectBytes,
  listKeys,
  runBundle,
  runCli,
  startPostgres,
  startS3,
  tableCounts,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { NeonTestServer } from '../harness/neon-server.js';
import { neonSpecProblems } from '../harness/neon-spec.js';

let pg: TestPostgres;
let s3: TestS3;
let neon: NeonTestServer;
let source: string;
let bucket: string;
let backupId: string;
let manifest: { snapshotLsn?: string; snapshotLsnApproximate?: boolean; tables: { rows: number }[] };
const work = tempDir();
const env = { PBA_NEON_POLL_MS: '20', PBA_NEON_RETRY_BASE_MS: '20' };

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });
const neonInputs = () => ({
  source: 'neon',
  'neon-api-key': neon.apiKey,
  'neon-project-id': neon.projectId,
  'neon-api-host': neon.url,
});
const verifyNeon = (inputs: Record<string, string> = {}) =>
  runBundle(
    'verify-restore',
    { ...s3Inputs(), database: 'clinic', ...neonInputs(), ...inputs },
    { ...env, GITHUB_WORKSPACE: work },
  );
const verifyBranches = () => [...neon.branches.values()].filter((b) => b.name.startsWith('pba-verify-'));
const branchPosts = () => neon.requests.filter((r) => r.method === 'POST' && /\/branches$/.test(r.path));
const checksFile = (name: string, sql: string) => {
  const file = path.join(work, name);
  writeFileSync(file, sql);
  return name;
};

async function readJson<T>(key: string): Promise<T> {
  return JSON.parse((await getObjectBytes(s3.client, bucket, key)).toString()) as T;
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  source = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), source);
  bucket = await s3.createBucket('neonverify');
  neon = new NeonTestServer(pg);
  await neon.start(source);
  const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(source), ...s3Inputs(), database: 'clinic' });
  if (run.exitCode !== 0) throw new Error(run.logs);
  backupId = run.outputs['backup-id']!;
  manifest = await readJson(run.outputs['manifest-key']!);
  // Neon's history at the backup's point: the database as it is now, nothing having been written since the backup.
  await neon.keepPoint(manifest.snapshotLsn);
});

afterAll(async () => {
  await neon?.stop();
  await Promise.all([pg?.stop(), s3?.stop()]);
});

beforeEach(() => {
  neon.faults = [];
  neon.operationPolls = 0;
});

test('pgdump-to-s3 records the WAL position of its snapshot', async () => {
  expect(manifest.snapshotLsn).toMatch(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/);
  const lsn = (await pg.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
  const value = (l: string) => parseInt(l.split('/')[0]!, 16) * 2 ** 32 + parseInt(l.split('/')[1]!, 16);
  expect(value(manifest.snapshotLsn!)).toBeLessThanOrEqual(value(lsn!));
});

test("passes at the backup's LSN with exact counts, records it beside the backup and deletes the branch", async () => {
  const checks = checksFile('ok.sql', 'SELECT count(*) > 0 FROM visits;');
  const run = await verifyNeon({ 'checks-sql': checks });
  expect(run.errors).toEqual([]);
  expect(run.outputs.status).toBe('passed');
  expect(run.outputs['backup-id']).toBe(backupId);
  const expected = [...(await tableCounts(pg, source)).values()].reduce((a, b) => a + b, 0);
  expect(run.outputs['tables-checked']).toBe('7');
  expect(Number(run.outputs['rows-checked'])).toBe(expected);
  expect(Number(run.outputs['rto-seconds'])).toBeGreaterThan(0);

  const body = branchPosts().at(-1)!.body as {
    branch: Record<string, string>;
    endpoints: unknown[];
    annotation_value: Record<string, string>;
  };
  expect(body.branch.parent_lsn).toBe(manifest.snapshotLsn);
  expect(body.branch.name).toMatch(new RegExp(`^pba-verify-${backupId.toLowerCase()}-[0-9a-f]{6}$`));
  const ttl = Date.parse(body.branch.expires_at!) - Date.now();
  expect(ttl).toBeGreaterThan(55 * 60_000);
  expect(ttl).toBeLessThanOrEqual(3600_000 + 1000);
  expect(body.endpoints).toHaveLength(1);
  expect(body.annotation_value['created-by']).toBe('postgres-backup-actions');
  expect(verifyBranches()).toEqual([]);
  expect(neon.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);

  const key = run.outputs['verification-key']!;
  expect(key).toMatch(
    new RegExp(`^postgres-backups/clinic/${backupId}/verifications/\\d{8}T\\d{6}Z-neon-[0-9a-f]{4}\\.json$`),
  );
  const record = await readJson<Record<string, unknown> & { neon: Record<string, unknown> }>(key);
  expect(record).toMatchObject({ source: 'neon', status: 'passed', backupId, mode: 'verify', tablesChecked: 7 });
  expect(record.neon).toMatchObject({
    projectId: neon.projectId,
    lsn: manifest.snapshotLsn,
    pointFrom: 'snapshotLsn',
    approximate: manifest.snapshotLsnApproximate === true,
    branchDeleted: true,
  });
  expect(run.summary).toContain('Neon point in time verified');
  expect(run.summary).toContain(`LSN ${manifest.snapshotLsn}`);

  // `list` shows the Neon verification beside the S3 one; an S3 verification is not taken for it.
  const list = await runCli(
    [
      'list',
      '--s3-bucket',
      bucket,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-force-path-style',
      'true',
      '--database',
      'clinic',
    ],
    s3.env,
  );
  expect(list.exitCode).toBe(0);
  expect(JSON.parse(list.stdout)).toEqual([
    expect.objectContaining({ backupId, verified: null, neonVerified: 'passed' }),
  ]);
});

test('fails after a failed check, and still deletes the branch', async () => {
  const checks = checksFile('bad.sql', 'SELECT count(*) = 0 FROM visits;');
  const run = await verifyNeon({ 'checks-sql': checks });
  expect(run.exitCode).toBe(1);
  expect(run.outputs.status).toBe('failed');
  expect(run.errors.join('\n')).toContain('check failed: SELECT count(*) = 0 FROM visits');
  expect(verifyBranches()).toEqual([]);
  const record = await readJson<{ status: string; source: string }>(run.outputs['verification-key']!);
  expect(record).toMatchObject({ status: 'failed', source: 'neon' });
});

test('fails when rows were deleted before the point it branches at', async () => {
  await pg.query('DELETE FROM visits WHERE id > 100', source);
  const after = await neon.keepPoint();
  const run = await verifyNeon({ lsn: after.lsn });
  expect(run.exitCode).toBe(1);
  expect(run.outputs.status).toBe('failed');
  expect((branchPosts().at(-1)!.body as { branch: Record<string, string> }).branch.parent_lsn).toBe(after.lsn);
  expect(run.errors.join('\n')).toMatch(
    /table\(s\) on the Neon branch at the backup's point differ from the manifest: public\.visits \(manifest 20000, branch 100\)/,
  );
  expect(run.summary).toContain('| `public.visits` | 20000 | 100 |');
  expect(verifyBranches()).toEqual([]);

  // The backup's own point still holds every row: Neon's history, not today's data, is what is compared.
  const again = await verifyNeon();
  expect(again.errors).toEqual([]);
  expect(again.outputs.status).toBe('passed');
});

test('a 423 storm past `timeout` fails cleanly and the branch is still deleted', async () => {
  neon.operationPolls = 1;
  neon.inject({ method: 'GET', path: /\/operations\//, status: 423, times: 100_000 });
  const run = await verifyNeon({ timeout: '2s' });
  expect(run.exitCode).toBe(1);
  expect(run.outputs.status).toBe('failed');
  expect(run.errors.join('\n')).toMatch(
    /was refused \(423\): another operation is still running on the project\. Retried until `timeout` ran out; re-running is safe/,
  );
  expect(run.logs).toMatch(/retry 1 in/);
  expect(run.logs).not.toMatch(/\n\s+at /);
  expect(verifyBranches()).toEqual([]);
  expect(neon.requests.filter((r) => r.method === 'DELETE').length).toBeGreaterThan(0);
});

test('a branch whose deletion keeps failing is named, and left to its TTL', async () => {
  neon.inject({ method: 'DELETE', path: /\/branches\//, status: 500, times: 100_000 });
  const run = await verifyNeon({ timeout: '2s' });
  neon.faults = [];
  expect(run.outputs.status).toBe('passed');
  const left = verifyBranches();
  expect(left).toHaveLength(1);
  expect(run.summary).toContain(`**no**: \`${left[0]!.name}\` could not be deleted`);
  expect(run.logs).toContain(`Could not delete the verification branch "${left[0]!.name}"`);
  expect(left[0]!.expires_at).toBeDefined();
  const record = await readJson<{ neon: { branchDeleted: boolean } }>(run.outputs['verification-key']!);
  expect(record.neon.branchDeleted).toBe(false);
  // Clean up through the API, as a user would.
  neon.branches.delete(left[0]!.id);
});

describe('bad inputs are named before any Neon call', () => {
  test.each<[Record<string, string>, RegExp]>([
    [{ 'neon-project-id': '' }, /Input `neon-project-id`: is required but empty/],
    [{ 'neon-api-key': '' }, /Input `neon-api-key`: is required but empty/],
    [{ lsn: 'latest' }, /Input `lsn`: "latest" is not an LSN/],
    [{ lsn: '0/1', timestamp: '2026-11-21T02:00:00Z' }, /Input `lsn`: is set together with `timestamp`/],
    [{ mode: 'restore' }, /Input `source`: `neon` only verifies/],
    [{ source: 'gcs' }, /Input `source`: "gcs" is not one of the allowed values/],
    [{ timeout: 'soon' }, /Input `timeout`/],
  ])('%j', async (inputs, message) => {
    const before = neon.requests.length;
    const run = await verifyNeon(inputs);
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
    expect(run.logs).not.toMatch(/\n\s+at /);
    expect(neon.requests.length).toBe(before);
  });
});

test('the CLI verify takes the same options', async () => {
  const out = await runCli(
    [
      'verify',
      '--source',
      'neon',
      '--neon-api-key',
      neon.apiKey,
      '--neon-project-id',
      neon.projectId,
      '--neon-api-host',
      neon.url,
      '--s3-bucket',
      bucket,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-force-path-style',
      'true',
      '--database',
      'clinic',
    ],
    { ...env, ...s3.env },
  );
  expect(out.exitCode).toBe(0);
  expect(JSON.parse(out.stdout)).toMatchObject({ status: 'passed', 'backup-id': backupId });
  expect(out.stderr).not.toContain(neon.apiKey);
  expect(verifyBranches()).toEqual([]);
});

test("every response of the test server matches Neon's OpenAPI spec; the API key is in no log", async () => {
  const { problems, templates } = neonSpecProblems(neon.responses);
  expect(problems).toEqual([]);
  expect(templates).toEqual(
    expect.arrayContaining([
      '/projects/{project_id}/branches post 201',
      '/projects/{project_id}/branches/{branch_id} delete 200',
    ]),
  );
  expect(findSecretsInLogs([neon.apiKey, pg.password])).toEqual([]);
  expect(await listKeys(s3.client, bucket)).toEqual(
    expect.arrayContaining([expect.stringMatching(/verifications\/.*-neon-[0-9a-f]{4}\.json$/)]),
  );
});
