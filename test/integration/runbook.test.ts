import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  tableCounts,
  exec,
  fixture,
  getObjectBytes,
  repoRoot,
  runBundle,
  startPostgres,
  startS3,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

let pg: TestPostgres;
/** The "new server": it lacks the roles that the clinic's RLS policies name. */
let pg2: TestPostgres;
let s3: TestS3;
afterAll(async () => Promise.all([pg?.stop(), pg2?.stop(), s3?.stop()]));

/** The shell block that follows `<!-- tested: NAME -->` in docs/RUNBOOK.md. */
function runbookBlock(name: string): string {
  const text = readFileSync(path.join(repoRoot, 'docs/RUNBOOK.md'), 'utf8');
  const m = new RegExp(`<!-- tested: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(text);
  if (!m) throw new Error(`no tested block ${name} in RUNBOOK.md`);
  return m[1]!;
}

test('"GitHub is down": the runbook restores an encrypted backup, roles first, with aws s3 cp, age, zstd, psql and pg_restore only', async () => {
  [pg, pg2, s3] = await Promise.all([startPostgres(), startPostgres(), startS3()]);
  const source = await pg.createDatabase('app');
  await pg.query(fixture('clinic.sql'), source);
  const bucket = await s3.createBucket('runbook');
  const work = tempDir('runbook-');
  await exec('age-keygen', ['-o', path.join(work, 'key.txt')]);
  const recipient = (await exec('age-keygen', ['-y', path.join(work, 'key.txt')])).toString().trim();
  const backup = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': pg.url(source),
      database: 'app',
      's3-bucket': bucket,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': 'true',
      'age-recipients': recipient,
    },
    s3.env,
  );
  expect(backup.errors).toEqual([]);
  const target = await pg2.createDatabase('newserver');
  const clinicRoles = `SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles WHERE rolname IN ('clinic_reader', 'Clinic Auditör') ORDER BY 1`;
  expect(await pg2.query(clinicRoles)).toEqual([]);

  // The AWS CLI pointed at the test S3 server: path-style addressing in its config, the endpoint by a wrapper
  // (AWS CLI 2.9 has no AWS_ENDPOINT_URL); everything else is the real CLI.
  const bin = path.join(work, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  const realAws = spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim();
  expect(realAws).not.toBe('');
  writeFileSync(path.join(bin, 'aws'), `#!/bin/sh\nexec "${realAws}" --endpoint-url "${s3.endpoint}" "$@"\n`);
  chmodSync(path.join(bin, 'aws'), 0o755);
  writeFileSync(path.join(work, 'aws-config'), '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n');

  const prefix = backup.outputs['manifest-key']!.replace(/\/manifest\.json$/, '');
  // The runbook's block, run as a person would after setting its variables.
  const runStockTools = (database: string, cwd: string) =>
    spawnSync('bash', ['-euo', 'pipefail', '-c', runbookBlock('stock-tools')], {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        ...s3.env,
        PATH: `${bin}:${process.env.PATH}`,
        AWS_CONFIG_FILE: path.join(work, 'aws-config'),
        BUCKET: bucket,
        BACKUP: prefix,
        AGE_KEY: path.join(work, 'key.txt'),
        TARGET: pg2.url(database).replace(`:${encodeURIComponent(pg2.password)}@`, '@'),
        PGPASSWORD: pg2.password,
      },
    });
  const r = runStockTools(target, work);
  // The one expected complaint: globals.sql creating the role the new server already has.
  const complaints = r.stderr.split('\n').filter((l) => /error/i.test(l));
  expect(complaints.filter((l) => !/role "postgres" already exists/.test(l))).toEqual([]);
  expect(r.status).toBe(0);
  expect(await pg2.query(clinicRoles)).toEqual([
    { rolname: 'Clinic Auditör', rolcanlogin: false, rolbypassrls: true },
    { rolname: 'clinic_reader', rolcanlogin: false, rolbypassrls: false },
  ]);
  const policies = await pg2.query<{ n: string }>('SELECT count(*) AS n FROM pg_policies', target);
  expect(policies[0]!.n).toBe('3');
  const manifest = JSON.parse(
    (await getObjectBytes(s3.client, bucket, backup.outputs['manifest-key']!)).toString(),
  ) as { tables: { schema: string; name: string; rows: number }[] };
  expect(await tableCounts(pg2, target)).toEqual(
    new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])),
  );

  // A corrupted download stops at the checksum line, before anything is restored.
  const key = `${prefix}/dump.pgdump.zst.age`;
  const bytes = await getObjectBytes(s3.client, bucket, key);
  bytes[100]! ^= 1;
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  const empty = await pg2.createDatabase('untouched');
  const bad = runStockTools(empty, tempDir('runbook-bad-'));
  expect(bad.status).not.toBe(0);
  expect(await tableCounts(pg2, empty)).toEqual(new Map());
});

test('"Rows were deleted / damaged": dry run, skip, check, with the CLI as the runbook writes it', async () => {
  if (!pg) [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const source = await pg.createDatabase('shop');
  await pg.query(fixture('shop.sql'), source);
  const bucket = await s3.createBucket('runbook-recover');
  const backup = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': pg.url(source),
      database: 'app',
      's3-bucket': bucket,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': 'true',
    },
    s3.env,
  );
  expect(backup.errors).toEqual([]);
  const before = await tableCounts(pg, source);
  // Written since the backup, then the damage: 30 customers deleted with their orders.
  await pg.query(
    `INSERT INTO customers (name, email) VALUES ('New-1', 'new-1@example.org');
     INSERT INTO orders (customer_id, amount) SELECT id, 1 FROM customers WHERE email = 'new-1@example.org';
     DELETE FROM orders WHERE customer_id <= 30; DELETE FROM customers WHERE id <= 30;`,
    source,
  );

  const work = tempDir('runbook-recover-');
  const bin = path.join(work, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(
    path.join(bin, 'postgres-backup'),
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(repoRoot, 'dist/cli/index.js')}" "$@"\n`,
  );
  chmodSync(path.join(bin, 'postgres-backup'), 0o755);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', runbookBlock('recover-rows')], {
    cwd: work,
    encoding: 'utf8',
    env: {
      ...env,
      ...s3.env,
      PATH: `${bin}:${process.env.PATH}`,
      S3: `--s3-bucket ${bucket} --s3-endpoint ${s3.endpoint} --s3-force-path-style true --database app`,
      BACKUP_ID: backup.outputs['backup-id']!,
      TARGET_URL: pg.url(source),
      DATABASE: source,
      TABLES: 'public.customers,public.orders',
    },
  });
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.status).toBe(0);
  const after = await tableCounts(pg, source);
  expect(after.get('public.customers')).toBe(before.get('public.customers')! + 1);
  expect(after.get('public.orders')).toBe(before.get('public.orders')! + 1);
  expect((await pg.query("SELECT 1 FROM customers WHERE email = 'new-1@example.org'", source)).length).toBe(1);
}, 300_000);

test('"GitHub is down", multi-artifact: the runbook restores a jobs: 3 backup (pre-data, data-* in parallel, post-data) with stock tools', async () => {
  if (!pg) [pg, pg2, s3] = await Promise.all([startPostgres(), startPostgres(), startS3()]);
  const source = await pg.createDatabase('parallel');
  await pg.query(fixture('clinic.sql'), source);
  const bucket = await s3.createBucket('runbook-multi');
  const work = tempDir('runbook-multi-');
  await exec('age-keygen', ['-o', path.join(work, 'key.txt')]);
  const recipient = (await exec('age-keygen', ['-y', path.join(work, 'key.txt')])).toString().trim();
  const backup = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': pg.url(source),
      database: 'app',
      's3-bucket': bucket,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': 'true',
      'age-recipients': recipient,
      jobs: '3',
    },
    s3.env,
  );
  expect(backup.errors).toEqual([]);
  const manifest = JSON.parse(
    (await getObjectBytes(s3.client, bucket, backup.outputs['manifest-key']!)).toString(),
  ) as { artifacts: { name: string }[]; tables: { schema: string; name: string; rows: number }[] };
  expect(manifest.artifacts.map((a) => a.name)).toContain('data-3');
  const bin = path.join(work, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  const realAws = spawnSync('sh', ['-c', 'command -v aws'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(path.join(bin, 'aws'), `#!/bin/sh\nexec "${realAws}" --endpoint-url "${s3.endpoint}" "$@"\n`);
  chmodSync(path.join(bin, 'aws'), 0o755);
  writeFileSync(path.join(work, 'aws-config'), '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n');
  const target = await pg2.createDatabase('newserver_multi');
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', runbookBlock('stock-tools-multi')], {
    cwd: work,
    encoding: 'utf8',
    env: {
      ...process.env,
      ...s3.env,
      PATH: `${bin}:${process.env.PATH}`,
      AWS_CONFIG_FILE: path.join(work, 'aws-config'),
      BUCKET: bucket,
      BACKUP: backup.outputs['manifest-key']!.replace(/\/manifest\.json$/, ''),
      AGE_KEY: path.join(work, 'key.txt'),
      TARGET: pg2.url(target).replace(`:${encodeURIComponent(pg2.password)}@`, '@'),
      PGPASSWORD: pg2.password,
    },
  });
  const complaints = r.stderr.split('\n').filter((l) => /error/i.test(l));
  expect(complaints.filter((l) => !/role "[^"]+" already exists/.test(l))).toEqual([]);
  expect(r.status).toBe(0);
  expect(await tableCounts(pg2, target)).toEqual(
    new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])),
  );
  const policies = await pg2.query<{ n: string }>('SELECT count(*) AS n FROM pg_policies', target);
  expect(policies[0]!.n).toBe('3');
}, 300_000);
