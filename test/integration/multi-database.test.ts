import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  findSecretsInLogs,
  getObjectBytes,
  listKeys,
  runBundle,
  runCli,
  startPostgres,
  startS3,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

/**
 * Several databases in one run, through the bundles: a server with four databases (one whose name needs quoting
 * and is not key-safe, one the backup role cannot connect to), backed up by a non-superuser role with
 * `databases: all`, then verified and pruned stream by stream.
 */
let pg: TestPostgres;
let s3: TestS3;
let bucket: string;

const QUOTED = 'My "Db" ü';
const QUOTED_STREAM = `My_Db-${createHash('sha256').update(QUOTED, 'utf8').digest('hex').slice(0, 8)}`;
const BOT_PASSWORD = 'B0t pw#/%ü';
/** Rows per database, different everywhere so that a stream holding another database's dump shows. */
const ROWS: Record<string, number> = { app: 3, billing: 5, [QUOTED]: 7, locked: 2 };
const STREAMS = ['app', 'billing', QUOTED_STREAM];

const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });
const botUrl = (database = 'postgres') =>
  `postgres://backup_bot:${encodeURIComponent(BOT_PASSWORD)}@${pg.host}:${pg.port}/${encodeURIComponent(database)}?sslmode=disable&application_name=pba-multi`;
const q = (name: string) => '"' + name.replace(/"/g, '""') + '"';

interface BackupsEntry {
  database: string;
  stream: string;
  'backup-id': string;
  'manifest-key': string;
  bytes: number;
}

async function manifest(key: string) {
  return JSON.parse((await getObjectBytes(s3.client, bucket, key)).toString('utf8')) as {
    backupId: string;
    database: string;
    source: { database: string };
    tables: { schema: string; name: string; rows: number }[];
  };
}

async function manifestKeys(): Promise<string[]> {
  return (await listKeys(s3.client, bucket, 'postgres-backups/')).filter((k) => k.endsWith('/manifest.json')).sort();
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  Object.assign(process.env, s3.env);
  bucket = await s3.createBucket();
  await pg.query(
    `CREATE ROLE backup_bot LOGIN PASSWORD '${BOT_PASSWORD.replace(/'/g, "''")}'; GRANT pg_read_all_data TO backup_bot`,
  );
  for (const [name, rows] of Object.entries(ROWS)) {
    await pg.query(`CREATE DATABASE ${q(name)} TEMPLATE template0`);
    await pg.query(
      `CREATE TABLE ${q('Ünïcode "T"')} (id int PRIMARY KEY, db text);
       INSERT INTO ${q('Ünïcode "T"')} SELECT g, current_database() FROM generate_series(1, ${rows}) g;`,
      name,
    );
  }
  await pg.query('REVOKE CONNECT ON DATABASE locked FROM PUBLIC');
}, 60_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

describe('pgdump-to-s3 with databases', () => {
  let backups: BackupsEntry[];

  test('`all` as a non-superuser: three streams backed up, the unconnectable fourth reported as skipped', async () => {
    const run = await runBundle('pgdump-to-s3', {
      'database-url': botUrl(),
      ...s3Inputs(),
      databases: 'all',
      'exclude-databases': 'postgres',
    });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    backups = JSON.parse(run.outputs.backups!) as BackupsEntry[];
    expect(backups.map((b) => [b.database, b.stream])).toEqual([
      [QUOTED, QUOTED_STREAM],
      ['app', 'app'],
      ['billing', 'billing'],
    ]);
    for (const b of backups) {
      expect(b['manifest-key']).toBe(`postgres-backups/${b.stream}/${b['backup-id']}/manifest.json`);
      const m = await manifest(b['manifest-key']);
      // Each stream holds its own database: the manifest names it and counts that database's rows.
      expect([m.backupId, m.database, m.source.database]).toEqual([b['backup-id'], b.stream, b.database]);
      expect(m.tables).toEqual([{ schema: 'public', name: 'Ünïcode "T"', rows: ROWS[b.database] }]);
      const dumpKey = `postgres-backups/${b.stream}/${b['backup-id']}/dump.pgdump.zst`;
      expect((await getObjectBytes(s3.client, bucket, dumpKey)).length).toBe(b.bytes);
    }
    expect(await manifestKeys()).toEqual(backups.map((b) => b['manifest-key']).sort());
    // The single-backup outputs have no one value with several databases; the totals do.
    expect(run.outputs['backup-id']).toBe('');
    expect(Number(run.outputs.bytes)).toBe(backups.reduce((s, b) => s + b.bytes, 0));
    expect(Number(run.outputs.rows)).toBe(3 + 5 + 7);
    expect(run.outputs.tables).toBe('3');
    // One summary table: three completed rows and the skipped database with its reason.
    expect(run.summary).toContain('## Backup of 3 database(s): 3 completed, 1 skipped');
    expect(run.summary).toMatch(/\| `locked` \| \| ⏭️ skipped: role "backup_bot" has no CONNECT privilege on it \|/);
    for (const b of backups) expect(run.summary).toContain(`| \`${b.stream}\` | ✅ completed | \`${b['backup-id']}\``);
    expect(run.logs).toMatch(/::warning::Skipped database "locked": role "backup_bot" has no CONNECT privilege/);
    expect(run.summary).not.toContain('`postgres`');
  });

  test('a failing database does not stop the others; the step fails at the end naming it', async () => {
    const before = await manifestKeys();
    const run = await runBundle('pgdump-to-s3', {
      'database-url': botUrl('app'),
      ...s3Inputs(),
      databases: 'billing\nnope, locked\napp',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors.at(-1)).toBe(
      'Backup failed for 2 of 4:\n' +
        '- nope: cannot be backed up: no such database on the server (names are case-sensitive). Check `databases`.\n' +
        '- locked: cannot be backed up: role "backup_bot" has no CONNECT privilege on it. Check `databases`.',
    );
    const made = JSON.parse(run.outputs.backups!) as BackupsEntry[];
    expect(made.map((b) => b.database)).toEqual(['billing', 'app']);
    const added = (await manifestKeys()).filter((k) => !before.includes(k));
    expect(added.sort()).toEqual(made.map((b) => b['manifest-key']).sort());
    expect(run.summary).toContain('## Backup of 4 database(s): 2 completed, 2 failed');
    expect(run.summary).toContain('| `nope` | `nope` | ❌ failed: cannot be backed up: no such database');
    expect(await listKeys(s3.client, bucket, 'postgres-backups/nope/')).toEqual([]);
    expect(await listKeys(s3.client, bucket, 'postgres-backups/locked/')).toEqual([]);
  });

  test('one database in `databases`: the single-database outputs keep their meaning', async () => {
    const run = await runBundle('pgdump-to-s3', { 'database-url': botUrl(), ...s3Inputs(), databases: QUOTED });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    const [b] = JSON.parse(run.outputs.backups!) as BackupsEntry[];
    expect(run.outputs['backup-id']).toBe(b!['backup-id']);
    expect(run.outputs['manifest-key']).toBe(b!['manifest-key']);
    expect(run.outputs['dump-key']).toBe(`postgres-backups/${QUOTED_STREAM}/${b!['backup-id']}/dump.pgdump.zst`);
    expect(run.outputs.rows).toBe('7');
  });

  test('without `databases`, `backups` holds the one backup', async () => {
    const run = await runBundle('pgdump-to-s3', {
      'database-url': botUrl('billing'),
      ...s3Inputs(),
      database: 'billing',
    });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    expect(JSON.parse(run.outputs.backups!)).toEqual([
      {
        database: 'billing',
        stream: 'billing',
        'backup-id': run.outputs['backup-id'],
        'manifest-key': run.outputs['manifest-key'],
        bytes: Number(run.outputs.bytes),
      },
    ]);
  });

  test('`database` and `databases` together is an input error, before any work', async () => {
    const before = await listKeys(s3.client, bucket);
    const run = await runBundle('pgdump-to-s3', {
      'database-url': botUrl(),
      ...s3Inputs(),
      database: 'app',
      databases: 'app',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors).toEqual([
      'Input `databases`: is set together with `database`. `database` names the one stream of a single-database run; with `databases` each database is its own stream, named after it. Clear one of the two.',
    ]);
    expect(await listKeys(s3.client, bucket)).toEqual(before);
  });
});

describe('verify-restore with databases', () => {
  const verify = (inputs: Record<string, string>) =>
    runBundle('verify-restore', { ...s3Inputs(), 'target-url': pg.url('postgres'), ...inputs });

  test('`all` verifies every stream under the prefix, one summary', async () => {
    const run = await verify({ databases: 'all' });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    expect(run.outputs.status).toBe('passed');
    const results = JSON.parse(run.outputs.verifications!) as {
      database: string;
      status: string;
      'backup-id': string;
      'verification-key': string;
    }[];
    expect(results.map((r) => [r.database, r.status])).toEqual(STREAMS.sort().map((s) => [s, 'passed']));
    for (const r of results) {
      expect(r['verification-key']).toMatch(
        new RegExp(`^postgres-backups/${r.database}/${r['backup-id']}/verifications/.+\\.json$`),
      );
      const record = JSON.parse((await getObjectBytes(s3.client, bucket, r['verification-key'])).toString()) as {
        status: string;
        tablesChecked: number;
      };
      expect([record.status, record.tablesChecked]).toEqual(['passed', 1]);
    }
    expect(Number(run.outputs['tables-checked'])).toBe(3);
    expect(Number(run.outputs['rows-checked'])).toBe(3 + 5 + 7);
    expect(run.summary).toContain('## Verification of 3 stream(s): 3 passed');
    expect(run.summary).toContain(`| \`${QUOTED_STREAM}\` | \`${QUOTED.replace(/\|/g, '\\|')}\` | ✅ passed |`);
    // No scratch database is left behind.
    const left = await pg.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pba_%'");
    expect(left).toEqual([]);
  });

  test('a list: database names map to their streams; a missing stream fails at the end, the others still verified', async () => {
    const run = await verify({ databases: `app\n${QUOTED}\nnope` });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.at(-1)).toMatch(/^Verification failed for 1 of 3:\n- nope: No complete backup under s3:\/\//);
    const results = JSON.parse(run.outputs.verifications!) as { database: string; status: string }[];
    expect(results).toEqual([
      expect.objectContaining({ database: 'app', status: 'passed' }),
      expect.objectContaining({ database: QUOTED_STREAM, status: 'passed' }),
    ]);
  });

  test('several streams in restore mode are refused before any work', async () => {
    const run = await verify({ databases: 'all', mode: 'restore', confirm: 'postgres' });
    expect(run.exitCode).toBe(1);
    expect(run.errors).toEqual([
      'Input `databases`: only applies to `mode: verify`. A restore writes one backup into the database of `target-url`: restore each database in its own step with `database`.',
    ]);
  });
});

describe('prune-retention with databases', () => {
  const perStream = (keys: string[]) =>
    Object.fromEntries(STREAMS.map((s) => [s, keys.filter((k) => k.startsWith(`postgres-backups/${s}/`)).length]));

  test('a list prunes only the streams of the databases it names', async () => {
    // app: 2 backups, billing: 3, the quoted database: 2.
    expect(perStream(await manifestKeys())).toEqual({ app: 2, billing: 3, [QUOTED_STREAM]: 2 });
    const run = await runBundle('prune-retention', {
      ...s3Inputs(),
      databases: `billing, ${QUOTED}`,
      'keep-last': '1',
    });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    expect(perStream(await manifestKeys())).toEqual({ app: 2, billing: 1, [QUOTED_STREAM]: 1 });
    expect([run.outputs.kept, run.outputs.deleted]).toEqual(['2', '3']);
    expect(run.summary).toContain('## Retention over 2 stream(s)');
    expect(run.summary).toContain(`| \`${QUOTED_STREAM}\` | 1 | 1 |`);
  });

  test('`all` prunes each stream under its own prefix, with its own floors', async () => {
    // A new billing backup: its verified one is no longer the newest, and the floors of each stream still hold.
    const fresh = await runBundle('pgdump-to-s3', { 'database-url': botUrl(), ...s3Inputs(), databases: 'billing' });
    expect(fresh.exitCode).toBe(0);
    const before = await manifestKeys();
    expect(perStream(before)).toEqual({ app: 2, billing: 2, [QUOTED_STREAM]: 1 });
    const run = await runBundle('prune-retention', { ...s3Inputs(), databases: 'all', 'keep-last': '1' });
    expect([run.exitCode, run.errors]).toEqual([0, []]);
    const after = await manifestKeys();
    // billing keeps its newest complete backup and its newest verified one.
    expect(perStream(after)).toEqual({ app: 1, billing: 2, [QUOTED_STREAM]: 1 });
    // The one kept in each stream is its newest.
    for (const s of STREAMS) {
      const keys = before.filter((k) => k.startsWith(`postgres-backups/${s}/`)).sort();
      expect(after).toContain(keys.at(-1));
    }
    expect([run.outputs.kept, run.outputs.deleted]).toEqual(['4', '1']);
    const plan = JSON.parse(readFileSync(run.outputs['plan-file']!, 'utf8')) as { stream: string }[];
    expect(plan.map((p) => p.stream)).toEqual([...STREAMS].sort());
    expect(run.summary).toContain('## Retention over 3 stream(s)');
  });

  test('the CLI takes the same options: a dry run over every stream', async () => {
    const before = await listKeys(s3.client, bucket);
    const r = await runCli([
      'prune',
      '--s3-bucket',
      bucket,
      '--s3-endpoint',
      s3.endpoint,
      '--s3-force-path-style',
      'true',
      '--databases',
      'all',
      '--keep-last',
      '1',
      '--dry-run',
    ]);
    expect([r.exitCode, r.stderr]).toEqual([0, expect.stringContaining('Applying retention to 3 stream(s)')]);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect([out.kept, out.deleted]).toEqual(['4', '0']);
    expect(await listKeys(s3.client, bucket)).toEqual(before);
  });

  test('a list with `exclude-databases` is refused', async () => {
    const run = await runBundle('prune-retention', {
      ...s3Inputs(),
      databases: 'app',
      'exclude-databases': 'billing',
      'keep-last': '1',
    });
    expect(run.exitCode).toBe(1);
    expect(run.errors[0]).toMatch(/^Input `exclude-databases`: only applies to `databases: all`/);
  });
});

test('no password in any log or summary', () => {
  expect(findSecretsInLogs([BOT_PASSWORD, pg.password])).toEqual([]);
});
