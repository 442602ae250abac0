import { GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  tableCounts,
  exec,
  findSecretsInLogs,
  fixture,
  freePort,
  getObjectBytes,
  listKeys,
  openMultipartUploads,
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
let db: string;
let bucket: string;
const work = tempDir();

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  db = await pg.createDatabase('rich');
  await pg.query(fixture('rich.sql'), db);
  bucket = await s3.createBucket();
  // Credentials reach the bundles through the environment, as on a runner.
  Object.assign(process.env, s3.env);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

function baseInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'database-url': pg.url(db),
    's3-bucket': bucket,
    's3-endpoint': s3.endpoint,
    's3-force-path-style': 'true',
    database: 'app',
    ...extra,
  };
}

async function expectNothingLeft(prefix: string) {
  const keys = await listKeys(s3.client, bucket, prefix);
  expect(keys.filter((k) => k.endsWith('manifest.json'))).toEqual([]);
  expect(await openMultipartUploads(s3.client, bucket)).toBe(0);
}

async function restoreAndCount(dump: Buffer): Promise<Map<string, number>> {
  const target = await pg.createDatabase('restored');
  const file = path.join(work, `${target}.pgdump`);
  writeFileSync(file, dump);
  await exec(
    'pg_restore',
    ['--no-owner', '--exit-on-error', '-d', pg.url(target).replace(`:${encodeURIComponent(pg.password)}`, ''), file],
    undefined,
    {
      ...process.env,
      PGPASSWORD: pg.password,
    },
  );
  return tableCounts(pg, target);
}

interface ManifestShape {
  formatVersion: number;
  backupId: string;
  kind: string;
  startedAt: string;
  snapshotAt: string;
  completedAt: string;
  source: { host: string; port: number; database: string; serverVersion: string; pgDumpVersion: string };
  artifacts: {
    name: string;
    key: string;
    bytes: number;
    sha256: string;
    format: string;
    compression: string;
    encryption: null | { scheme: string; recipients: string[] };
  }[];
  tables: { schema: string; name: string; rows: number }[];
  largeObjects: number;
  github: { repository: string; runId: string } | null;
}

describe('pgdump-to-s3 through its bundle', () => {
  test('backs up a rich database; the dump matches the manifest and restores with every row', async () => {
    const run = await runBundle('pgdump-to-s3', baseInputs({ kind: 'pre-migration' }));
    expect(run.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    const manifest = JSON.parse(
      (await getObjectBytes(s3.client, bucket, run.outputs['manifest-key']!)).toString(),
    ) as ManifestShape;
    expect(manifest.formatVersion).toBe(1);
    expect(manifest.backupId).toBe(run.outputs['backup-id']);
    expect(manifest.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    expect(run.outputs['manifest-key']).toBe(`postgres-backups/app/${manifest.backupId}/manifest.json`);
    expect(manifest.kind).toBe('pre-migration');
    expect(manifest.source).toMatchObject({ host: '127.0.0.1', port: pg.port, database: db });
    expect(manifest.source.serverVersion).toMatch(/^\d+\.\d+/);
    expect(manifest.source.pgDumpVersion).toMatch(/^\d+\.\d+/);
    expect(manifest.github).toMatchObject({ repository: 'octo-org/app', runId: '4242' });
    expect(Date.parse(manifest.snapshotAt)).toBeGreaterThanOrEqual(Date.parse(manifest.startedAt));
    expect(Date.parse(manifest.completedAt)).toBeGreaterThanOrEqual(Date.parse(manifest.snapshotAt));
    expect(manifest.largeObjects).toBe(1);
    const artifact = manifest.artifacts[0]!;
    expect(artifact).toMatchObject({ name: 'dump', format: 'custom', compression: 'zstd', encryption: null });
    expect(artifact.key).toBe(run.outputs['dump-key']);

    const stored = await getObjectBytes(s3.client, bucket, artifact.key);
    expect(stored.length).toBe(artifact.bytes);
    expect(String(stored.length)).toBe(run.outputs.bytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(artifact.sha256);
    expect(run.outputs.sha256).toBe(artifact.sha256);
    const tags = await s3.client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: artifact.key }));
    expect(Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({
      'backup-id': manifest.backupId,
      kind: 'pre-migration',
      database: 'app',
    });

    const source = await tableCounts(pg, db);
    const inManifest = new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows]));
    expect(inManifest).toEqual(source);
    expect(inManifest.get('public.patients')).toBe(3001);
    expect(inManifest.get('public.events_2025')! + inManifest.get('public.events_2026')!).toBe(8000);
    expect(inManifest.get('Mixed Case.Odd "Name" Table')).toBe(17);
    expect(run.outputs.tables).toBe(String(manifest.tables.length));
    expect(run.outputs.rows).toBe(String([...source.values()].reduce((a, b) => a + b, 0)));

    const restored = await restoreAndCount(await exec('zstd', ['-d', '-c'], stored));
    expect(restored).toEqual(inManifest);
    expect(run.summary).toContain(manifest.backupId);
    expect(run.summary).toContain('Rows');
  });

  test('age-encrypted backup restores with stock tools: age -d, zstd -d, pg_restore', async () => {
    const keyFile = path.join(work, 'age.key');
    await exec('age-keygen', ['-o', keyFile]);
    const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
    const run = await runBundle('pgdump-to-s3', baseInputs({ 'age-recipients': `${recipient}\n` }));
    expect(run.errors).toEqual([]);
    const manifest = JSON.parse(
      (await getObjectBytes(s3.client, bucket, run.outputs['manifest-key']!)).toString(),
    ) as ManifestShape;
    expect(manifest.artifacts[0]!.encryption).toEqual({ scheme: 'age', recipients: [recipient] });
    expect(manifest.artifacts[0]!.key).toMatch(/dump\.pgdump\.zst\.age$/);
    const stored = await getObjectBytes(s3.client, bucket, manifest.artifacts[0]!.key);
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(createHash('sha256').update(stored).digest('hex')).toBe(manifest.artifacts[0]!.sha256);
    const plain = await exec('zstd', ['-d', '-c'], await exec('age', ['-d', '-i', keyFile], stored));
    const restored = await restoreAndCount(plain);
    expect(restored).toEqual(new Map(manifest.tables.map((t) => [`${t.schema}.${t.name}`, t.rows])));
  });

  test("gzip (pg_dump's own compression) restores with pg_restore directly; excluded table data is recorded", async () => {
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({ compression: 'gzip', 'exclude-table-data': 'public.audit_*' }),
    );
    expect(run.errors).toEqual([]);
    const manifest = JSON.parse(
      (await getObjectBytes(s3.client, bucket, run.outputs['manifest-key']!)).toString(),
    ) as ManifestShape;
    expect(manifest.artifacts[0]!.compression).toBe('gzip');
    expect(manifest.tables.find((t) => t.name === 'audit_log')).toEqual({
      schema: 'public',
      name: 'audit_log',
      rows: 0,
      dataExcluded: true,
    });
    const restored = await restoreAndCount(await getObjectBytes(s3.client, bucket, manifest.artifacts[0]!.key));
    expect(restored.get('public.audit_log')).toBe(0);
    expect(restored.get('public.patients')).toBe(3001);
  });

  test('the CLI backs up with the same option names', async () => {
    const args = Object.entries(baseInputs({ database: 'cli-app', compression: 'none' })).flatMap(([k, v]) => [
      `--${k}`,
      v,
    ]);
    const out = await runCli(['backup', ...args], s3.env);
    expect(out.stderr).not.toContain('error');
    expect(out.exitCode).toBe(0);
    const outputs = JSON.parse(out.stdout) as Record<string, string>;
    expect(outputs['manifest-key']).toMatch(/^postgres-backups\/cli-app\/\d{8}T\d{6}Z-[0-9a-f]{4}\/manifest\.json$/);
    const keys = await listKeys(s3.client, bucket, 'postgres-backups/cli-app/');
    const globalsKey = outputs['manifest-key']!.replace(/manifest\.json$/, 'globals.sql.zst');
    expect(keys.sort()).toEqual(
      [
        outputs['dump-key'],
        globalsKey,
        outputs['manifest-key'],
        outputs['manifest-key']!.replace('manifest.json', 'RECOVERY.md'),
      ].sort(),
    );
  });
});

describe('pgdump-to-s3 failures leave no manifest and no open upload', () => {
  function wrapper(name: string, body: string): string {
    const file = path.join(work, name);
    writeFileSync(
      file,
      `#!/bin/sh\necho "$@" >> "${file}.argv"\nif [ "$1" = "--version" ]; then exec pg_dump --version; fi\n${body}\n`,
    );
    chmodSync(file, 0o755);
    return file;
  }

  test('pg_dump dying mid-stream after several upload parts', async () => {
    const dying = wrapper(
      'dying',
      'head -c 12000000 /dev/urandom\necho "pg_dump: error: connection to server lost" >&2\nexit 1',
    );
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({ database: 'dying', 'pg-dump-path': dying, compression: 'none', 'part-size-mb': '5' }),
      s3.env,
    );
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('pg_dump exited with code 1');
    expect(run.errors.join('\n')).toContain('connection to server lost');
    await expectNothingLeft('postgres-backups/dying/');
    expect(await listKeys(s3.client, bucket, 'postgres-backups/dying/')).toEqual([]);
    // The password went through the environment: never in pg_dump's argv.
    const argv = readFileSync(`${dying}.argv`, 'utf8');
    expect(argv).toContain('--snapshot=');
    expect(argv).not.toContain(pg.password);
    expect(argv).not.toContain(encodeURIComponent(pg.password));
  });

  test('pg_dump killed by a signal', async () => {
    const killed = wrapper('killed', 'head -c 100000 /dev/urandom\nkill -9 $$');
    const run = await runBundle('pgdump-to-s3', baseInputs({ database: 'killed', 'pg-dump-path': killed }), s3.env);
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/pg_dump was killed by SIGKILL/);
    await expectNothingLeft('postgres-backups/killed/');
  });

  test('bytes lost between zstd and the upload fail the backup, with no manifest', async () => {
    // A zstd on PATH whose output loses its last 100 bytes on the way to us, while its own summary (stderr) counts
    // them all: the backup must compare the two, not trust a clean exit.
    const bin = path.join(work, 'lossy-bin');
    const realZstd = (await exec('sh', ['-c', 'command -v zstd'])).toString().trim();
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      path.join(bin, 'zstd'),
      `#!/bin/bash\nset -o pipefail\ncase " $* " in *" -vv "*) "${realZstd}" "$@" | head -c -100 ;; *) exec "${realZstd}" "$@" ;; esac\n`,
    );
    chmodSync(path.join(bin, 'zstd'), 0o755);
    const run = await runBundle('pgdump-to-s3', baseInputs({ database: 'lossy' }), {
      ...s3.env,
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/zstd wrote (\d+) bytes of dump but \d+ reached the upload/);
    const [, wrote, got] = /wrote (\d+) bytes of dump but (\d+)/.exec(run.errors.join('\n'))!;
    expect(Number(wrote) - Number(got)).toBe(100);
    await expectNothingLeft('postgres-backups/lossy/');
  });

  test('server newer than the available pg_dump', async () => {
    const old = path.join(work, 'old_pg_dump');
    writeFileSync(old, '#!/bin/sh\necho "pg_dump (PostgreSQL) 12.4"\n');
    chmodSync(old, 0o755);
    const run = await runBundle('pgdump-to-s3', baseInputs({ database: 'old', 'pg-dump-path': old }), s3.env);
    expect(run.exitCode).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toMatch(/server runs PostgreSQL \d+\.\d+/);
    expect(message).toContain('pg_dump 12.4');
    expect(message).toMatch(/postgresql-client-\d+/);
    await expectNothingLeft('postgres-backups/old/');
  });

  test('S3 endpoint unreachable', async () => {
    const port = await freePort();
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({ database: 'unreachable', 's3-endpoint': `http://127.0.0.1:${port}` }),
      s3.env,
    );
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /object store http:\/\/127\.0\.0\.1:\d+ could not be reached \(ECONNREFUSED\).*re-running is safe/s,
    );
    await expectNothingLeft('postgres-backups/unreachable/');
  });

  test('S3 failing mid-stream is reported as the cause, not as the SIGTERM that stopped pg_dump', async () => {
    const port = await freePort();
    const big = wrapper('big', 'head -c 30000000 /dev/urandom');
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({
        database: 'midstream',
        'pg-dump-path': big,
        compression: 'none',
        'part-size-mb': '5',
        's3-endpoint': `http://127.0.0.1:${port}`,
      }),
      s3.env,
    );
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(/object store .* could not be reached/);
    expect(run.errors.join('\n')).not.toMatch(/SIGTERM/);
  });

  test('missing bucket', async () => {
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({ database: 'nobucket', 's3-bucket': 'no-such-bucket-here' }),
      s3.env,
    );
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('Bucket "no-such-bucket-here" does not exist');
  });

  test('wrong password: the message names the input, never the password', async () => {
    const wrong = 'Wr0ng-pa$$word';
    const run = await runBundle(
      'pgdump-to-s3',
      baseInputs({ database: 'wrongpw', 'database-url': pg.url(db, wrong) }),
      s3.env,
    );
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('Authentication failed for postgres@127.0.0.1');
    expect(run.errors.join('\n')).toContain('`database-url`');
    expect(run.logs).not.toContain(wrong);
    expect(run.logs).not.toContain(encodeURIComponent(wrong));
    await expectNothingLeft('postgres-backups/wrongpw/');
  });

  const malformed: [string, string, RegExp][] = [
    ['database-url', 'mysql://u:p@h/db', /Input `database-url`: has the scheme "mysql"/],
    ['database-url', 'not a url', /Input `database-url`: is not a URL/],
    ['database-url', 'postgres://u:p@h:5432/', /Input `database-url`: names no database/],
    ['database-url', 'postgres://u:p@h/db?sslmode=sometimes', /Input `database-url`: has sslmode=sometimes/],
    ['s3-bucket', 's3://bucket/path', /Input `s3-bucket`: "s3:\/\/bucket\/path" is not a bucket name/],
    ['s3-endpoint', 'ftp://files', /Input `s3-endpoint`: "ftp:\/\/files" is not an http\(s\) URL/],
    ['s3-checksum', 'sometimes', /Input `s3-checksum`: "sometimes" is not one of/],
    ['s3-force-path-style', 'maybe', /Input `s3-force-path-style`: "maybe" is not a boolean/],
    ['storage-class', 'GLACIER', /Input `storage-class`: GLACIER objects cannot be read/],
    ['storage-class', 'DEEP_ARCHIVE', /Input `storage-class`: DEEP_ARCHIVE objects cannot be read/],
    ['storage-class', 'COLD', /Input `storage-class`: "COLD" is not one of/],
    ['sse', 'kms', /Input `sse`: "kms" is not one of/],
    ['sse-kms-key-id', 'arn:aws:kms:eu-west-1:1:key/x', /Input `sse-kms-key-id`: is set but `sse` is not `aws:kms`/],
    ['age-recipients', 'age1notakey', /Input `age-recipients`: "age1notakey" is not an age X25519 recipient/],
    [
      'age-recipients',
      'AGE-SECRET-KEY-1QQQQ',
      /Input `age-recipients`: entry 1, an age identity \(secret key\), is not/,
    ],
    ['compression', 'lz4', /Input `compression`: "lz4" is not one of/],
    ['compression-level', '42', /Input `compression-level`: "42" is not a whole number from 1 to 19/],
    ['lock-wait-timeout', '5 minutes', /Input `lock-wait-timeout`: "5 minutes" is not a duration/],
    ['kind', 'nightly run', /Input `kind`: "nightly run" is not a simple label/],
    ['database', 'a/b', /Input `database`: "a\/b" contains `\/`/],
    ['part-size-mb', '2', /Input `part-size-mb`: "2" is not a whole number from 5 to 512/],
    [
      'pg-dump-path',
      '/nonexistent/pg_dump',
      /Input `pg-dump-path`: "\/nonexistent\/pg_dump" is not a runnable pg_dump/,
    ],
  ];
  test.each(malformed)('malformed %s=%s is named in the error', async (input, value, expected) => {
    const run = await runBundle('pgdump-to-s3', baseInputs({ database: 'malformed', [input]: value }), s3.env);
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(expected);
    expect(run.logs).not.toMatch(/\n\s+at /); // no stack trace for a user mistake
    await expectNothingLeft('postgres-backups/malformed/');
  });

  test('a missing required input is named', async () => {
    const run = await runBundle('pgdump-to-s3', { 'database-url': pg.url(db) });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain('Input `s3-bucket`: is required but empty');
  });
});

test('no log line of any run above holds the test password or a URL with it', () => {
  expect(findSecretsInLogs([pg.password, pg.url(db), 'Wr0ng-pa$$word'])).toEqual([]);
});
