import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  exec,
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

let pg: TestPostgres;
let s3: TestS3;
let source: string;
beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  source = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), source);
});
afterAll(async () => Promise.all([pg?.stop(), s3?.stop()]));

/** The shell block that follows `<!-- recovery-commands -->`. */
function commandsOf(markdown: string): string {
  const m = /<!-- recovery-commands -->\s*```sh\n([\s\S]*?)```/.exec(markdown);
  if (!m) throw new Error('RECOVERY.md has no recovery-commands block');
  return m[1]!;
}

/** Runs the block as a person would: the real AWS CLI (path-style addressing for the test server), bash. */
function runCommands(block: string, target: string, env: Record<string, string> = {}) {
  const work = tempDir('recovery-run-');
  writeFileSync(path.join(work, 'aws-config'), '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n');
  return spawnSync('bash', ['-c', block], {
    cwd: work,
    encoding: 'utf8',
    env: {
      ...process.env,
      ...s3.env,
      AWS_CONFIG_FILE: path.join(work, 'aws-config'),
      TARGET: pg.url(target).replace(`:${encodeURIComponent(pg.password)}@`, '@'),
      PGPASSWORD: pg.password,
      ...env,
    },
  });
}

test.each([
  ['encrypted, zstd', 'zstd', true],
  ['plain, gzip', 'gzip', false],
])(
  'RECOVERY.md of a %s backup describes it exactly and its commands restore it with stock tools',
  async (_label, compression, encrypted) => {
    const bucket = await s3.createBucket('recovery');
    const work = tempDir('recovery-key-');
    const keyFile = path.join(work, 'key.txt');
    await exec('age-keygen', ['-o', keyFile]);
    const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
    const backup = await runBundle(
      'pgdump-to-s3',
      {
        'database-url': pg.url(source),
        database: 'clinic',
        's3-bucket': bucket,
        's3-endpoint': s3.endpoint,
        's3-force-path-style': 'true',
        compression,
        ...(encrypted ? { 'age-recipients': recipient } : {}),
      },
      s3.env,
    );
    expect(backup.errors).toEqual([]);
    const manifestKey = backup.outputs['manifest-key']!;
    const recoveryKey = manifestKey.replace(/manifest\.json$/, 'RECOVERY.md');
    expect(await listKeys(s3.client, bucket)).toContain(recoveryKey);
    const manifest = JSON.parse((await getObjectBytes(s3.client, bucket, manifestKey)).toString()) as {
      backupId: string;
      startedAt: string;
      artifacts: { key: string; bytes: number; sha256: string }[];
      tables: { schema: string; name: string; rows: number }[];
    };
    const md = (await getObjectBytes(s3.client, bucket, recoveryKey)).toString();
    expect(md).toContain(`# Recovery of backup ${manifest.backupId}`);
    expect(md).toContain(manifest.startedAt);
    for (const a of manifest.artifacts) {
      expect(md).toContain(a.sha256);
      expect(md).toContain(`${a.bytes} bytes`);
      expect(md).toContain(a.key);
    }
    const block = commandsOf(md);
    expect(block).toMatch(/aws s3 cp/);
    expect(block).toMatch(/sha256sum -c/);
    expect(block).toMatch(/pg_restore/);
    expect(/age -d/.test(block)).toBe(encrypted);
    expect(/zstd -d[^\n]*dump\.pgdump/.test(block)).toBe(compression === 'zstd');

    const target = await pg.createDatabase('restored');
    const r = runCommands(block, target, { AGE_KEY: keyFile });
    // The globals script recreates roles that this test server already has: psql reports each, harmlessly.
    const stderr = r.stderr
      .split('\n')
      .filter((l) => !/^psql:globals\.sql:\d+: ERROR: {2}role .* already exists$/.test(l))
      .join('\n');
    expect(stderr).not.toMatch(/error|FAILED/i);
    expect(r.status).toBe(0);
    expect(await tableCounts(pg, target)).toEqual(
      new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])),
    );

    // A corrupted object stops at the checksum, before anything is restored.
    const dump = manifest.artifacts[0]!.key;
    const bytes = await getObjectBytes(s3.client, bucket, dump);
    bytes[bytes.length - 10]! ^= 1;
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: dump, Body: bytes }));
    const untouched = await pg.createDatabase('untouched');
    const bad = runCommands(block, untouched, { AGE_KEY: keyFile });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/FAILED/);
    expect(await tableCounts(pg, untouched)).toEqual(new Map());
  },
);

test('RECOVERY.md of a multi-artifact (jobs: 3) backup restores it with stock tools: pre-data, data-* in parallel, post-data', async () => {
  const rich = await pg.createDatabase('rich');
  await pg.query(fixture('rich.sql'), rich);
  const bucket = await s3.createBucket('recovery-multi');
  const backup = await runBundle(
    'pgdump-to-s3',
    {
      'database-url': pg.url(rich),
      database: 'rich',
      's3-bucket': bucket,
      's3-endpoint': s3.endpoint,
      's3-force-path-style': 'true',
      jobs: '3',
    },
    s3.env,
  );
  expect(backup.errors).toEqual([]);
  const manifestKey = backup.outputs['manifest-key']!;
  const manifest = JSON.parse((await getObjectBytes(s3.client, bucket, manifestKey)).toString()) as {
    artifacts: { name: string; key: string; sha256: string }[];
    tables: { schema: string; name: string; rows: number }[];
  };
  expect(manifest.artifacts.map((a) => a.name)).toEqual([
    'pre-data',
    'data-1',
    'data-2',
    'data-3',
    'post-data',
    'globals',
  ]);
  const md = (
    await getObjectBytes(s3.client, bucket, manifestKey.replace(/manifest\.json$/, 'RECOVERY.md'))
  ).toString();
  const block = commandsOf(md);
  for (const a of manifest.artifacts) expect(md).toContain(a.sha256);
  // Order: pre-data restored before any data artifact, the data artifacts before post-data (with -j).
  const at = (s: string) => block.indexOf(s);
  expect(at('--dbname "$TARGET" \'pre-data.pgdump\'')).toBeGreaterThan(0);
  expect(at("'data-1.pgdump'")).toBeGreaterThan(at('--dbname "$TARGET" \'pre-data.pgdump\''));
  expect(at('--jobs=4 --dbname "$TARGET" \'post-data.pgdump\'')).toBeGreaterThan(at("'data-3.pgdump' ) &"));

  const target = await pg.createDatabase('restored_multi');
  const r = runCommands(block, target);
  const stderr = r.stderr
    .split('\n')
    .filter((l) => !/^psql:globals\.sql:\d+: ERROR: {2}role .* already exists$/.test(l))
    .join('\n');
  expect(stderr).not.toMatch(/error|FAILED/i);
  expect(r.status).toBe(0);
  expect(await tableCounts(pg, target)).toEqual(new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])));
  expect(await tableCounts(pg, target)).toEqual(await tableCounts(pg, rich));
  const [lo] = await pg.query<{ n: string }>('SELECT count(*) AS n FROM pg_largeobject_metadata', target);
  expect(Number(lo!.n)).toBe(1);
  // post-data ran: the primary keys exist.
  const [pk] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM pg_constraint WHERE contype = 'p'", target);
  expect(Number(pk!.n)).toBeGreaterThan(0);
});
