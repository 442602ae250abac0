import { PutObjectCommand } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  tableCounts,
  exec,
  findSecretsInLogs,
  fixture,
  getObjectBytes,
  listKeys,
  runBundle,
  runCli,
  startPostgres,
  startS3,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

let pg: TestPostgres;
let s3: TestS3;
let source: string;
let bucket: string;
let plainId: string;
let encryptedId: string;
let identity: string;
const work = tempDir();

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

async function backup(database: string, extra: Record<string, string> = {}): Promise<string> {
  const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(source), ...s3Inputs(), database, ...extra });
  if (run.exitCode !== 0) throw new Error(run.logs);
  return run.outputs['backup-id']!;
}

async function counts(db: string): Promise<Record<string, number>> {
  return Object.fromEntries(await tableCounts(pg, db));
}

async function scratchDatabases(): Promise<string[]> {
  return (await pg.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'")).map(
    (r) => r.datname,
  );
}

function verify(inputs: Record<string, string>, env: Record<string, string> = {}) {
  return runBundle(
    'verify-restore',
    {
      ...s3Inputs(),
      database: 'clinic',
      'target-url': pg.url('postgres'),
      ...inputs,
    },
    env,
  );
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  source = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), source);
  bucket = await s3.createBucket('verify');
  const keyFile = path.join(work, 'key.txt');
  await exec('age-keygen', ['-o', keyFile]);
  identity = (await exec('cat', [keyFile])).toString();
  const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
  plainId = await backup('clinic');
  encryptedId = await backup('clinic-enc', { 'age-recipients': recipient });
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

describe('verify-restore: verify mode', () => {
  test('passes on a good backup, records the verification and drops the scratch database', async () => {
    const run = await verify({});
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(run.outputs['backup-id']).toBe(plainId);
    expect(run.outputs['tables-checked']).toBe('7');
    const expected = Object.values(await counts(source)).reduce((a, b) => a + b, 0);
    expect(Number(run.outputs['rows-checked'])).toBe(expected);
    expect(Number(run.outputs['rto-seconds'])).toBeGreaterThan(0);
    expect(Number(run.outputs['rpo-seconds'])).toBeGreaterThanOrEqual(0);
    expect(run.outputs['verification-key']).toMatch(
      new RegExp(`^postgres-backups/clinic/${plainId}/verifications/\\d{8}T\\d{6}Z-[0-9a-f]{4}\\.json$`),
    );
    const record = JSON.parse((await getObjectBytes(s3.client, bucket, run.outputs['verification-key']!)).toString());
    expect(record).toMatchObject({
      formatVersion: 1,
      backupId: plainId,
      status: 'passed',
      mode: 'verify',
      tablesChecked: 7,
      failures: [],
    });
    expect(record.timings.restoreSeconds).toBeGreaterThan(0);
    expect(run.summary).toMatch(/Backup verified/);
    expect(run.summary).toMatch(/RTO/);
    expect(await scratchDatabases()).toEqual([]);
  });

  test('passes on an age-encrypted backup with the identity', async () => {
    const run = await verify({ database: 'clinic-enc', 'age-identity': identity });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({ status: 'passed', 'backup-id': encryptedId, 'tables-checked': '7' });
  });

  test('a missing age identity is a clear error', async () => {
    const run = await verify({ database: 'clinic-enc' });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/age-encrypted; set `age-identity`/);
  });

  test('a wrong age identity is a clear error and leaves no scratch database', async () => {
    const other = path.join(work, 'other.txt');
    await exec('age-keygen', ['-o', other]);
    const run = await verify({ database: 'clinic-enc', 'age-identity': (await exec('cat', [other])).toString() });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/age identity cannot decrypt this backup/);
    expect(await scratchDatabases()).toEqual([]);
  });

  test('a user check that fails names the statement and shows the offending rows', async () => {
    const file = path.join(work, 'checks.sql');
    writeFileSync(
      file,
      `-- every visit belongs to a client
SELECT count(*) = 0 FROM visits v LEFT JOIN clients c ON c.id = v.client_id WHERE c.id IS NULL;
SELECT true;
-- there must be no organization named Care Org 1 (there is)
SELECT id, name FROM organizations WHERE name = 'Care Org 1';
SELECT count(*) > 1000000 AS enough_visits FROM visits;`,
    );
    const run = await verify({ 'checks-sql': path.basename(file) }, { GITHUB_WORKSPACE: work });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    const message = run.errors.join('\n');
    expect(message).toContain("check failed: SELECT id, name FROM organizations WHERE name = 'Care Org 1'");
    expect(message).toContain('"name":"Care Org 1"');
    expect(message).toContain('check failed: SELECT count(*) > 1000000 AS enough_visits FROM visits');
    expect(message).not.toContain('check failed: SELECT true');
    expect(message).not.toContain('every visit belongs');
    expect(run.summary).toContain('Failing check');
    expect(await scratchDatabases()).toEqual([]);
  });

  test('passing user checks pass', async () => {
    const file = path.join(work, 'good.sql');
    writeFileSync(
      file,
      "SELECT count(*) = 5 FROM organizations;\nSELECT * FROM users WHERE role NOT IN ('admin', 'coordinator', 'caregiver');\n",
    );
    const run = await verify({ 'checks-sql': path.basename(file) }, { GITHUB_WORKSPACE: work });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
  });

  test('a stale newest backup fails max-age before anything is restored', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const run = await verify({ 'max-age': '1s' });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/older than `max-age`/);
    expect(run.outputs['verification-key']).toBeUndefined();
  });

  test('an empty prefix', async () => {
    const run = await verify({ database: 'nothing-here' });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/No complete backup under s3:\/\/.*\/postgres-backups\/nothing-here\//);
  });

  test('an unknown backup-id lists the recent ones', async () => {
    const run = await verify({ 'backup-id': '20200101T000000Z-dead' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('no backup "20200101T000000Z-dead"');
    expect(run.errors.join('\n')).toContain(plainId);
  });

  test('an incomplete backup named explicitly is refused', async () => {
    const id = '20261101T000000Z-beef';
    await s3.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: `postgres-backups/clinic/${id}/dump.pgdump.zst`, Body: 'partial' }),
    );
    const run = await verify({ 'backup-id': id });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain(`backup "${id}" has no manifest: it is incomplete`);
  });

  test('a manifest whose row count disagrees with the data fails and names the table', async () => {
    const id = await backup('tampered-manifest');
    const key = `postgres-backups/tampered-manifest/${id}/manifest.json`;
    const manifest = JSON.parse((await getObjectBytes(s3.client, bucket, key)).toString());
    manifest.tables.find((t: { name: string }) => t.name === 'visits').rows += 1;
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(manifest) }));
    const run = await verify({ database: 'tampered-manifest' });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toContain('public.visits (manifest 20001, restored 20000)');
    const record = JSON.parse((await getObjectBytes(s3.client, bucket, run.outputs['verification-key']!)).toString());
    expect(record.status).toBe('failed');
    expect(await scratchDatabases()).toEqual([]);
  });

  test('one flipped byte in the dump is caught by the checksum before any restore', async () => {
    const id = await backup('flipped');
    const key = (await listKeys(s3.client, bucket, `postgres-backups/flipped/${id}/dump`))[0]!;
    const bytes = await getObjectBytes(s3.client, bucket, key);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const run = await verify({ database: 'flipped' });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/Checksum mismatch for .*nothing was restored/);
    const record = JSON.parse((await getObjectBytes(s3.client, bucket, run.outputs['verification-key']!)).toString());
    expect(record.status).toBe('failed');
    expect(record.timings.restoreSeconds).toBeUndefined();
    expect(await scratchDatabases()).toEqual([]);
  });
});

describe('verify-restore: restore mode', () => {
  test('refuses without a matching confirm', async () => {
    const target = await pg.createDatabase('target');
    const run = await verify({ mode: 'restore', 'target-url': pg.url(target), confirm: 'production' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain(
      `Input \`confirm\`: restore mode overwrites database "${target}"; set \`confirm\` to exactly \`${target}\``,
    );
    expect(await counts(target)).toEqual({});
  });

  test('in place, refuses a target that has tables unless clean: true', async () => {
    const target = await pg.createDatabase('busy');
    await pg.query('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)', target);
    const inPlace = { 'restore-strategy': 'in-place' };
    const run = await verify({ mode: 'restore', 'target-url': pg.url(target), confirm: target, ...inPlace });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /Input `clean`: database ".*" already has 1 of the tables to restore \(public.keep_me\)/,
    );
    expect(await counts(target)).toEqual({ 'public.keep_me': 1 });

    const cleaned = await verify({
      mode: 'restore',
      'target-url': pg.url(target),
      confirm: target,
      clean: 'true',
      ...inPlace,
    });
    expect(cleaned.errors).toEqual([]);
    expect(await counts(target)).toEqual({ ...(await counts(source)), 'public.keep_me': 1 });
  });

  test('restores everything into an empty target, touching no other database', async () => {
    const target = await pg.createDatabase('fresh');
    const bystander = await pg.createDatabase('bystander');
    await pg.query('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)', bystander);
    const run = await verify({ mode: 'restore', 'target-url': pg.url(target), confirm: target });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(await counts(target)).toEqual(await counts(source));
    expect(await counts(bystander)).toEqual({ 'public.t': 2 });
    expect(await counts(source)).toMatchObject({ 'public.visits': 20000 });
  });

  test('restores only the listed tables, with their constraints and indexes', async () => {
    const target = await pg.createDatabase('partial');
    const run = await verify({
      mode: 'restore',
      'target-url': pg.url(target),
      confirm: target,
      tables: 'public.organizations\npublic.clients',
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs['tables-checked']).toBe('2');
    expect(await counts(target)).toEqual({ 'public.organizations': 5, 'public.clients': 1000 });
    const constraints = await pg.query<{ conname: string }>(
      "SELECT conname FROM pg_constraint WHERE conrelid = 'clients'::regclass ORDER BY 1",
      target,
    );
    expect(constraints.map((c) => c.conname)).toEqual(['clients_organization_id_fkey', 'clients_pkey']);
    const next = await pg.query<{ id: number }>(
      "INSERT INTO clients (organization_id, full_name) VALUES (1, 'new') RETURNING id",
      target,
    );
    expect(next[0]!.id).toBe(1001);
  });

  test('a dropped table comes back into the live database without touching the others', async () => {
    const live = await pg.createDatabase('live');
    await pg.query(fixture('clinic.sql'), live);
    await pg.query('DROP TABLE audit_logs; DELETE FROM visits WHERE id > 100', live);
    const run = await verify({
      mode: 'restore',
      'target-url': pg.url(live),
      confirm: live,
      tables: 'public.audit_logs',
    });
    expect(run.errors).toEqual([]);
    const after = await counts(live);
    expect(after['public.audit_logs']).toBe(5000);
    expect(after['public.visits']).toBe(100);
  });

  test('unknown tables are named', async () => {
    const target = await pg.createDatabase('unknown');
    const run = await verify({ mode: 'restore', 'target-url': pg.url(target), confirm: target, tables: 'public.nope' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('Input `tables`: the backup has no table public.nope');
  });
});

describe('CLI', () => {
  test('list shows complete and incomplete backups with their verification', async () => {
    const out = await runCli(
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
    expect(out.exitCode).toBe(0);
    const rows = JSON.parse(out.stdout) as { backupId: string; complete: boolean; verified: string | null }[];
    expect(rows.find((r) => r.backupId === plainId)).toMatchObject({ complete: true, verified: 'passed' });
    expect(rows.find((r) => r.backupId === '20261101T000000Z-beef')).toMatchObject({ complete: false });
    expect(out.stderr).toContain('INCOMPLETE');
  });

  test('verify runs from a terminal with the same option names', async () => {
    const out = await runCli(
      [
        'verify',
        '--s3-bucket',
        bucket,
        '--s3-endpoint',
        s3.endpoint,
        '--s3-force-path-style',
        'true',
        '--database',
        'clinic',
        '--target-url',
        pg.url('postgres'),
        '--jobs',
        '1',
      ],
      s3.env,
    );
    expect(out.stderr).not.toMatch(/error/);
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ status: 'passed', 'backup-id': plainId });
  });
});

test('no log line holds the database password or the age identity', () => {
  expect(
    findSecretsInLogs([pg.password, pg.url('postgres'), identity.split('\n').find((l) => l.startsWith('AGE-SECRET'))!]),
  ).toEqual([]);
});
