// npm run bench:restore — bare pg_restore of a local copy of a backup vs verify-restore end to end from the local
// S3 server, single-artifact and multi-artifact (`jobs` = the CPU count), on ~30 tables of mixed sizes of random
// text (BENCH_SIZE_MB, default 1000; BENCH_SEED=text: one table instead). Prints; asserts nothing.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getObjectBytes, parseOutputFile, startPostgres, startS3 } from '../test/harness/index.js';
import { actionEnv, copyBundle, databaseBytes, seedMixedTables, seedRandomText, timed } from './common.js';

const mb = Number(process.env.BENCH_SIZE_MB ?? 1000);
const jobs = String(os.availableParallelism());
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-restore-'));
const [pg, s3] = await Promise.all([startPostgres(), startS3()]);
const bucket = await s3.createBucket('bench');
const pgEnv = { ...process.env, PGPASSWORD: pg.password };
const s3Inputs = {
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
  's3-prefix': 'postgres-backups',
  's3-checksum': 'auto',
};

// Copies: a rebuild of dist/ while the benchmark runs must not pull the bundles from under it.
const bundles: Record<string, string> = {};
for (const name of ['pgdump-to-s3', 'verify-restore']) {
  bundles[name] = copyBundle(name, work);
}
const oldVerify = process.env.BENCH_OLD_VERIFY_BUNDLE;

/** Bytes under `dir` now (the verification's work directory). */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    try {
      n += statSync(path.join(e.parentPath ?? e.path, e.name)).size;
    } catch {
      /* deleted meanwhile */
    }
  }
  return n;
}

async function action(name: string, inputs: Record<string, string>, file = bundles[name]!) {
  const out = path.join(work, 'out');
  writeFileSync(out, '');
  const temp = path.join(work, `temp-${Date.now()}`);
  mkdirSync(temp);
  let peakDisk = 0;
  const sampler = setInterval(() => (peakDisk = Math.max(peakDisk, bytesUnder(temp))), 100);
  const r = await timed(
    process.execPath,
    [file],
    actionEnv(inputs, { ...s3.env, GITHUB_OUTPUT: out, RUNNER_TEMP: temp }),
  );
  clearInterval(sampler);
  rmSync(temp, { recursive: true, force: true });
  if (r.code !== 0) throw new Error(`${name} failed: ${r.stderr}`);
  return { ...r, peakDiskMb: peakDisk / 1e6, outputs: parseOutputFile(readFileSync(out, 'utf8')) };
}

try {
  const db = await pg.createDatabase('bench');
  process.stderr.write(`Seeding ~${mb} MB of random text...\n`);
  if (process.env.BENCH_SEED === 'text') await seedRandomText(pg, db, mb);
  else await seedMixedTables(pg, db, mb);
  const dbBytes = await databaseBytes(pg, db);
  const backupInputs = {
    ...s3Inputs,
    'database-url': pg.url(db),
    database: 'bench',
    compression: 'zstd',
    'storage-class': 'STANDARD',
    sse: 'AES256',
    kind: 'scheduled',
    'lock-wait-timeout': '30s',
  };
  const backup = await action('pgdump-to-s3', backupInputs);
  const multiBackup = await action('pgdump-to-s3', { ...backupInputs, database: 'bench-multi', jobs });

  // (a) bare: the same stored object on local disk, zstd -d, then pg_restore -j into a fresh database.
  const local = path.join(work, 'dump.zst');
  writeFileSync(local, await getObjectBytes(s3.client, bucket, backup.outputs['dump-key']!));
  const plain = path.join(work, 'dump.pgdump');
  const unzip = await timed('zstd', ['-d', '-q', '-f', local, '-o', plain]);
  const fresh = await pg.createDatabase('bare');
  const bare = await timed(
    'pg_restore',
    [
      '--no-owner',
      '--no-acl',
      '--no-password',
      `--jobs=${jobs}`,
      `--dbname=${pg.url(fresh, '').replace(':@', '@')}`,
      plain,
    ],
    pgEnv,
  );
  if (bare.code !== 0) throw new Error(bare.stderr);
  const plainBytes = statSync(plain).size;
  rmSync(plain);
  const a = unzip.seconds + bare.seconds;

  // (b) verify-restore end to end from S3: download + checksum + decompress + restore + row counts.
  const verifyInputs = {
    ...s3Inputs,
    database: 'bench',
    'backup-id': 'latest',
    'target-url': pg.url('postgres'),
    mode: 'verify',
    clean: 'false',
    jobs,
  };
  const b = await action('verify-restore', verifyInputs);
  // (c) the same from the multi-artifact backup: pre-data, data streamed into pg_restore, post-data with -j.
  const c = await action('verify-restore', { ...verifyInputs, database: 'bench-multi' });
  const old = oldVerify ? await action('verify-restore', verifyInputs, oldVerify) : undefined;
  console.log(
    [
      `### Restore of a ${(dbBytes / 1e9).toFixed(2)} GB database (backup ${(Number(backup.outputs.bytes) / 1e6).toFixed(0)} MB, zstd), ${jobs} jobs`,
      '',
      '| Method | Seconds | Peak local disk MB | Peak RSS MB | load average (1 min) at start |',
      '|---|---|---|---|---|',
      `| (a) zstd -d local file + pg_restore -j${jobs} into a fresh database | ${a.toFixed(1)} (${unzip.seconds.toFixed(1)} + ${bare.seconds.toFixed(1)}) | ${(Number(backup.outputs.bytes) / 1e6 + plainBytes / 1e6).toFixed(0)} (stored + decompressed) | - | ${unzip.load1.toFixed(1)} |`,
      `| (b) verify-restore end to end from S3 (reported RTO ${b.outputs['rto-seconds']} s) | ${b.seconds.toFixed(1)} | ${b.peakDiskMb.toFixed(0)} | ${b.peakRssMb.toFixed(0)} | ${b.load1.toFixed(1)} |`,
      `| (c) verify-restore end to end from S3, multi-artifact backup (\`jobs: ${jobs}\`, ${(Number(multiBackup.outputs.bytes) / 1e6).toFixed(0)} MB; reported RTO ${c.outputs['rto-seconds']} s) | ${c.seconds.toFixed(1)} | ${c.peakDiskMb.toFixed(0)} | ${c.peakRssMb.toFixed(0)} | ${c.load1.toFixed(1)} |`,
      ...(old
        ? [
            `| (b') previous build of verify-restore (reported RTO ${old.outputs['rto-seconds']} s) | ${old.seconds.toFixed(1)} | ${old.peakDiskMb.toFixed(0)} | ${old.peakRssMb.toFixed(0)} | ${old.load1.toFixed(1)} |`,
          ]
        : []),
      '',
      `b/a = ${(b.seconds / a).toFixed(2)}, c/a = ${(c.seconds / a).toFixed(2)}. The decompressed dump is ${(plainBytes / 1e6).toFixed(0)} MB; peak local disk is sampled every 0.1 s.`,
    ].join('\n'),
  );
} finally {
  await Promise.all([pg.stop(), s3.stop()]);
  rmSync(work, { recursive: true, force: true });
}
