/**
 * Roles, globals and extensions across two servers: the source (a private copy of the server with one extra
 * extension, `pba_test_ext`) and a stock restore server that lacks the clinic's roles and that extension.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import {
  exec,
  findSecretsInLogs,
  fixture,
  getObjectBytes,
  listKeys,
  runBundle,
  startPostgres,
  startS3,
  tableCounts,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';
import { serverTreeWithExtension, startPostgresFrom } from '../harness/extension-tree.js';

interface Artifact {
  name: string;
  key: string;
  bytes: number;
  sha256: string;
  format: string;
  compression: string;
  encryption: { scheme: string; recipients: string[] } | null;
}
interface Manifest {
  artifacts: Artifact[];
  globals?: { status: string; error?: string };
  tables: { schema: string; name: string; rows: number }[];
}

const ROLES = ['Clinic Auditör', 'clinic_reader'];
const EXT_SQL = `CREATE DOMAIN pba_score AS int CHECK (VALUE >= 0);
CREATE FUNCTION pba_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
`;

let source: TestPostgres; // has pba_test_ext and the clinic's roles
let target: TestPostgres; // stock: neither
let s3: TestS3;
let bucket: string;
let clinicDb: string;
let recipient: string;
let identity: string;
const work = tempDir('roles-');

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

async function backup(database: string, stream: string, extra: Record<string, string> = {}, url?: string) {
  const run = await runBundle('pgdump-to-s3', {
    'database-url': url ?? source.url(database),
    ...s3Inputs(),
    database: stream,
    ...extra,
  });
  if (run.exitCode !== 0) throw new Error(run.logs);
  const manifest = JSON.parse(
    (await getObjectBytes(s3.client, bucket, run.outputs['manifest-key']!)).toString(),
  ) as Manifest;
  return { run, manifest };
}

const verify = (stream: string, inputs: Record<string, string> = {}) =>
  runBundle('verify-restore', { ...s3Inputs(), database: stream, 'target-url': target.url('postgres'), ...inputs });

async function presentRoles(pg: TestPostgres): Promise<string[]> {
  return (
    await pg.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles WHERE rolname IN ('clinic_reader', 'Clinic Auditör') ORDER BY 1`,
    )
  ).map((r) => r.rolname);
}

async function scratchDatabases(pg: TestPostgres): Promise<string[]> {
  return (await pg.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'")).map(
    (r) => r.datname,
  );
}

beforeAll(async () => {
  const tree = serverTreeWithExtension({ name: 'pba_test_ext', sql: EXT_SQL });
  target = await startPostgres(); // before the other: startPostgresFrom points the harness at its tree meanwhile
  [source, s3] = await Promise.all([startPostgresFrom(tree), startS3()]);
  Object.assign(process.env, s3.env);
  bucket = await s3.createBucket('roles');
  clinicDb = await source.createDatabase('clinic');
  await source.query(fixture('clinic.sql'), clinicDb);
  await exec('age-keygen', ['-o', path.join(work, 'key.txt')]);
  identity = (await exec('cat', [path.join(work, 'key.txt')])).toString();
  recipient = (await exec('age-keygen', ['-y', path.join(work, 'key.txt')])).toString().trim();
}, 60_000);

afterAll(async () => Promise.all([source?.stop(), target?.stop(), s3?.stop()]));

describe('pgdump-to-s3: globals', () => {
  test('stores pg_dumpall --globals-only beside the dump, checksummed in the manifest, without passwords', async () => {
    await source.query(`ALTER ROLE clinic_reader PASSWORD 'reader-secret-pw'`);
    const { run, manifest } = await backup(clinicDb, 'clinic');
    expect(run.errors).toEqual([]);
    expect(manifest.globals).toEqual({ status: 'stored' });
    expect(manifest.artifacts.map((a) => a.name)).toEqual(['dump', 'globals']);
    const g = manifest.artifacts[1]!;
    expect(g).toMatchObject({ format: 'sql', compression: 'zstd', encryption: null });
    expect(g.key).toBe(run.outputs['manifest-key']!.replace(/manifest\.json$/, 'globals.sql.zst'));
    const stored = await getObjectBytes(s3.client, bucket, g.key);
    expect(stored.length).toBe(g.bytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(g.sha256);
    const sql = (await exec('zstd', ['-d', '-c'], stored)).toString();
    expect(sql).toContain('CREATE ROLE clinic_reader;');
    expect(sql).toMatch(/ALTER ROLE "Clinic Auditör" WITH .*NOLOGIN.* BYPASSRLS;/);
    expect(sql).not.toMatch(/PASSWORD|SCRAM-SHA-256|reader-secret-pw/);
    expect(run.summary).toMatch(/\| Globals \| roles and tablespaces stored/);
  });

  test('encrypted like the dump when age-recipients is set', async () => {
    const { manifest } = await backup(clinicDb, 'clinic-enc', { 'age-recipients': recipient });
    const g = manifest.artifacts.find((a) => a.name === 'globals')!;
    expect(g.key).toMatch(/\/globals\.sql\.zst\.age$/);
    expect(g.encryption).toEqual({ scheme: 'age', recipients: [recipient] });
    const stored = await getObjectBytes(s3.client, bucket, g.key);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(g.sha256);
    const plain = await exec('age', ['-d', '-i', path.join(work, 'key.txt')], stored);
    expect((await exec('zstd', ['-d', '-c'], plain)).toString()).toContain('CREATE ROLE clinic_reader;');
  });

  test('`globals: false` stores none and says so in the manifest', async () => {
    const { run, manifest } = await backup(clinicDb, 'clinic-noglobals', { globals: 'false' });
    expect(manifest.globals).toEqual({ status: 'off' });
    expect(manifest.artifacts.map((a) => a.name)).toEqual(['dump']);
    const prefix = run.outputs['manifest-key']!.replace(/manifest\.json$/, '');
    expect((await listKeys(s3.client, bucket, prefix)).sort()).toEqual([
      prefix + 'RECOVERY.md',
      prefix + 'dump.pgdump.zst',
      prefix + 'manifest.json',
    ]);
  });

  test('a server that refuses the globals warns and records it; the backup still succeeds', async () => {
    // A managed host in miniature: a non-superuser owner, and a catalog pg_dumpall reads closed to it.
    await source.query(`CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw-123'`);
    const db = await source.createDatabase('managed');
    await source.query(`ALTER DATABASE "${db}" OWNER TO app_owner`);
    await source.query(
      `REVOKE SELECT ON pg_catalog.pg_auth_members FROM PUBLIC;
       CREATE TABLE notes (id int PRIMARY KEY); ALTER TABLE notes OWNER TO app_owner; INSERT INTO notes VALUES (1), (2)`,
      db,
    );
    const url = source.url(db).replace(/\/\/[^@]+@/, '//app_owner:owner-pw-123@');
    const { run, manifest } = await backup(db, 'managed', {}, url);
    expect(run.exitCode).toBe(0);
    expect(manifest.globals?.status).toBe('failed');
    expect(manifest.globals?.error).toMatch(/permission denied for table pg_auth_members/);
    expect(manifest.artifacts.map((a) => a.name)).toEqual(['dump']);
    expect(run.logs).toMatch(/warning.*globals not stored \(the backup itself is fine\)/i);
    expect(run.summary).toMatch(/Globals \| ⚠️ not stored: .*permission denied/);
    expect(manifest.tables).toEqual([{ schema: 'public', name: 'notes', rows: 2 }]);
    const prefix = run.outputs['manifest-key']!.replace(/manifest\.json$/, '');
    expect(await listKeys(s3.client, bucket, prefix + 'globals')).toEqual([]);
  });
});

describe('verify-restore: roles the restore server lacks', () => {
  test('verify creates the missing roles, passes, and drops them after the scratch database', async () => {
    expect(await presentRoles(target)).toEqual([]);
    const run = await verify('clinic');
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(run.outputs['tables-checked']).toBe('7');
    expect(run.logs).toContain('Created 2 missing role(s) as NOLOGIN without password');
    expect(run.summary).toMatch(/Roles created on the target .*\(dropped again: .*`Clinic Auditör`/s);
    expect(run.summary).toContain('`clinic_reader`');
    expect(await presentRoles(target)).toEqual([]);
    expect(await scratchDatabases(target)).toEqual([]);
  });

  test('restore mode with `create-roles: none` names every missing role and restores nothing', async () => {
    const db = await target.createDatabase('none');
    const run = await verify('clinic', {
      mode: 'restore',
      'target-url': target.url(db),
      confirm: db,
      'create-roles': 'none',
    });
    expect(run.exitCode).toBe(1);
    const msg = run.errors.join('\n');
    expect(msg).toContain('Input `create-roles`');
    expect(msg).toContain('"clinic_reader"');
    expect(msg).toContain('"Clinic Auditör"');
    expect(await tableCounts(target, db)).toEqual(new Map());
    expect(await presentRoles(target)).toEqual([]);
  });

  test('restore mode creates them (attributes from the globals, never a password) and lists them', async () => {
    const db = await target.createDatabase('restored');
    const run = await verify('clinic-enc', {
      mode: 'restore',
      'target-url': target.url(db),
      confirm: db,
      'age-identity': identity,
    });
    expect(run.errors).toEqual([]);
    expect(run.summary).toMatch(/Roles created on the target as NOLOGIN without password/);
    expect(run.summary).toContain('`clinic_reader`');
    expect(run.summary).toContain('`Clinic Auditör`');
    expect(run.summary).not.toContain('dropped again');
    const roles = await target.query<{
      rolname: string;
      rolcanlogin: boolean;
      rolbypassrls: boolean;
      rolpassword: string | null;
    }>(
      `SELECT rolname, rolcanlogin, rolbypassrls, rolpassword FROM pg_authid WHERE rolname IN ('clinic_reader', 'Clinic Auditör') ORDER BY 1`,
    );
    expect(roles).toEqual([
      { rolname: 'Clinic Auditör', rolcanlogin: false, rolbypassrls: true, rolpassword: null },
      { rolname: 'clinic_reader', rolcanlogin: false, rolbypassrls: false, rolpassword: null },
    ]);
    const policies = await target.query<{ tablename: string; policyname: string; roles: string }>(
      'SELECT tablename, policyname, (SELECT array_agg(r ORDER BY r) FROM unnest(roles) r)::text AS roles FROM pg_policies ORDER BY 1, 2',
      db,
    );
    expect(policies).toEqual([
      { tablename: 'Patienten Übersicht', policyname: 'Ärzte lesen', roles: '{"Clinic Auditör"}' },
      { tablename: 'visits', policyname: 'visits_org', roles: '{clinic_reader}' },
      { tablename: 'visits', policyname: 'visits_read', roles: '{"Clinic Auditör",clinic_reader}' },
    ]);
    expect((await tableCounts(target, db)).get('Klinik Ärzte.Patienten Übersicht')).toBe(42);
    // A later verification finds them present: nothing created, nothing dropped.
    const again = await verify('clinic');
    expect(again.outputs.status).toBe('passed');
    expect(again.summary).not.toContain('Roles created');
    expect(await presentRoles(target)).toEqual(ROLES);
    await target.query(`DROP DATABASE "${db}"`);
    await target.query(`DROP ROLE clinic_reader; DROP ROLE "Clinic Auditör"`);
  });
});

describe('verify-restore: extensions the restore server lacks', () => {
  beforeAll(async () => {
    const db = await source.createDatabase('ext');
    await source.query(
      `CREATE EXTENSION pba_test_ext;
       CREATE TABLE scores (id int PRIMARY KEY, score pba_score, answer int DEFAULT pba_answer());
       INSERT INTO scores (id, score) VALUES (1, 10), (2, 20);
       ALTER TABLE scores ENABLE ROW LEVEL SECURITY;
       CREATE POLICY scores_read ON scores TO clinic_reader USING (true);`,
      db,
    );
    await backup(db, 'ext');
  });

  test('verify fails before restoring, with one message naming the extension and the fix; nothing is left', async () => {
    const available = (a: TestPostgres) =>
      a.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pba_test_ext'").then((r) => r.length);
    expect([await available(source), await available(target)]).toEqual([1, 0]);
    const run = await verify('ext');
    expect(run.exitCode).toBe(1);
    const msg = run.errors.join('\n');
    expect(msg).toContain('the extension "pba_test_ext"');
    expect(msg).toContain('does not have');
    expect(msg).toContain('`postgres-image`');
    expect(msg).toContain('nothing was restored');
    expect(msg).not.toMatch(/pg_restore reported/);
    expect(await scratchDatabases(target)).toEqual([]);
    expect(await presentRoles(target)).toEqual([]);
  });

  test('restore mode too, and the target database is untouched', async () => {
    const db = await target.createDatabase('ext_restore');
    const run = await verify('ext', { mode: 'restore', 'target-url': target.url(db), confirm: db });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('the extension "pba_test_ext"');
    expect(await tableCounts(target, db)).toEqual(new Map());
    expect(await presentRoles(target)).toEqual([]);
  });

  test('the source server itself, which has the extension, verifies the same backup', async () => {
    const run = await runBundle('verify-restore', {
      ...s3Inputs(),
      database: 'ext',
      'target-url': source.url('postgres'),
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
  });
});

describe('multi-artifact (jobs: 2) backups: the pre-data archive answers the roles and extension checks', () => {
  test('verify creates the missing roles from the pre-data archive, passes, and drops them again', async () => {
    await backup(clinicDb, 'clinic-multi', { jobs: '2' });
    expect(await presentRoles(target)).toEqual([]);
    const run = await verify('clinic-multi');
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('passed');
    expect(run.outputs['tables-checked']).toBe('7');
    expect(run.logs).toContain('Created 2 missing role(s) as NOLOGIN without password');
    expect(await presentRoles(target)).toEqual([]);
    expect(await scratchDatabases(target)).toEqual([]);
  });

  test('a missing extension stops the verification before anything is restored', async () => {
    const db = await source.createDatabase('ext_multi');
    await source.query(
      `CREATE EXTENSION pba_test_ext;
       CREATE TABLE scores (id int PRIMARY KEY, score pba_score);
       INSERT INTO scores (id, score) VALUES (1, 10), (2, 20);`,
      db,
    );
    await backup(db, 'ext-multi', { jobs: '2' });
    const run = await verify('ext-multi');
    expect(run.exitCode).toBe(1);
    const msg = run.errors.join('\n');
    expect(msg).toContain('the extension "pba_test_ext"');
    expect(msg).toContain('nothing was restored');
    expect(await scratchDatabases(target)).toEqual([]);
  });
});

test('no log line holds a password or the age identity', () => {
  expect(
    findSecretsInLogs([
      source.password,
      'reader-secret-pw',
      'owner-pw-123',
      identity.split('\n').find((l) => l.startsWith('AGE-SECRET'))!,
    ]),
  ).toEqual([]);
});
