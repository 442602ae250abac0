// npm run bench:backup — the irreducible local work (pg_dump | zstd | sha256sum) against pgdump-to-s3 into an S3
// endpoint that discards what it receives and into the embedded S3 server (s3rver), with a profile of each stage,
// on databases of random text (BENCH_SIZES_MB, default "1000,3000"; BENCH_ROUNDS, default 3, medians).
// BENCH_OLD_BUNDLE: another build of dist/pgdump-to-s3/index.js to compare with. Parallel dumps: `jobs` 1/2/4
// (BENCH_JOBS) on ~30 tables of mixed sizes (BENCH_PARALLEL_MB, default 1000; 0 skips) against the parallel limit,
// `pg_dump -Fd -j N -Z0` + zstd to local disk. BENCH_SIZES_MB=0 skips the single-stream part. Prints; asserts nothing.
import * as sdk from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { exec, parseOutputFile, startPostgres, startS3 } from '../test/harness/index.js';
import { startDiscardS3 } from '../test/harness/discard-s3.js';
import { PooledUpload } from '../src/lib/multipart.js';
import { makeTestCa } from '../test/harness/tls.js';
import {
  actionEnv,
  copyBundle,
  databaseBytes,
  median,
  seedMixedTables,
  seedRandomText,
  timed,
  type Timed,
} from './common.js';

const sizes = (process.env.BENCH_SIZES_MB ?? '1000,3000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const parallelMb = Number(process.env.BENCH_PARALLEL_MB ?? 1000);
const jobsList = (process.env.BENCH_JOBS ?? '1,2,4').split(',').map(Number);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const oldBundle = process.env.BENCH_OLD_BUNDLE;
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-backup-'));
// The https endpoint is what AWS looks like: TLS, and the CRC32 `s3-checksum: auto` sends to AWS (so the parts
// sign UNSIGNED-PAYLOAD instead of a second SHA-256 pass; src/lib/payload-signing.ts).
const ca = makeTestCa('pba-bench-ca');
const [pg, s3, discard, discardTls] = await Promise.all([
  startPostgres(),
  startS3(),
  startDiscardS3(),
  startDiscardS3({ tls: ca }),
]);
const bucket = await s3.createBucket('bench');
const pgEnv = { ...process.env, PGPASSWORD: pg.password };
const keyFile = path.join(work, 'age.key');
await exec('age-keygen', ['-o', keyFile]);
const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
const PART = 8 * 1024 * 1024;
// A copy: a rebuild of dist/ while the benchmark runs must not pull the bundle from under it.
const actionBundle = copyBundle('pgdump-to-s3', work);

/**
 * The upload's own cost: `bytes` from memory through the action's pooled multipart upload (src/lib/multipart.ts;
 * 8 MiB parts, 4 in flight) and the SDK into the discarding endpoint.
 */
async function sdkFromMemory(bytes: number): Promise<number> {
  const client = new sdk.S3Client({
    endpoint: discard.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  const chunk = Buffer.alloc(1 << 20, 7);
  let left = bytes;
  const body = Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        yield chunk.subarray(0, n);
      }
    })(),
  );
  const t0 = performance.now();
  await new PooledUpload(
    { sdk, client },
    { Bucket: 'discard', Key: 'sdk' },
    { partSizeBytes: PART, queueSize: 4 },
  ).send(body);
  client.destroy();
  return (performance.now() - t0) / 1000;
}

type Target = 'discard' | 'discard-tls' | 's3rver';
async function runAction(db: string, target: Target, extra: Record<string, string>, file = actionBundle) {
  const out = path.join(work, 'out');
  writeFileSync(out, '');
  const inputs = {
    'database-url': pg.url(db),
    's3-bucket': target === 's3rver' ? bucket : 'discard',
    's3-endpoint': { discard: discard.endpoint, 'discard-tls': discardTls.endpoint, s3rver: s3.endpoint }[target],
    's3-force-path-style': 'true',
    's3-prefix': 'postgres-backups',
    's3-checksum': target === 'discard-tls' ? 'always' : 'auto',
    'storage-class': 'STANDARD',
    sse: 'AES256',
    compression: 'zstd',
    'lock-wait-timeout': '30s',
    kind: 'scheduled',
    globals: 'true',
    ...extra,
  };
  const r = await timed(
    process.execPath,
    [file],
    actionEnv(inputs, { ...s3.env, GITHUB_OUTPUT: out, NODE_EXTRA_CA_CERTS: ca.caFile }),
  );
  if (r.code !== 0) throw new Error(`action failed: ${r.stderr}`);
  const outputs = parseOutputFile(readFileSync(out, 'utf8'));
  return { ...r, bytes: Number(outputs.bytes) };
}

const sh = (script: string, env: NodeJS.ProcessEnv) => timed('bash', ['-o', 'pipefail', '-c', script], env);

interface Row {
  label: string;
  runs: Timed[];
  note?: string;
}
const secs = (r: Row) => median(r.runs.map((x) => x.seconds));
const fmtRow = (r: Row, limit: number) => {
  const s = secs(r);
  const rss = median(r.runs.map((x) => x.peakRssMb));
  const disk = Math.max(...r.runs.map((x) => x.diskWriteMb));
  return `| ${r.label} | ${s.toFixed(2)} | ${(s / limit).toFixed(2)} | ${rss ? rss.toFixed(0) : '-'} | ${disk.toFixed(0)} | ${r.runs.map((x) => x.load1.toFixed(1)).join(' / ')} |`;
};

const report: string[] = [];
try {
  // Start-up: load the bundle, read the inputs, fail on the first missing one (no database, no S3 request).
  const startup: Timed[] = [];
  for (let i = 0; i < 5; i++)
    startup.push(await timed(process.execPath, [actionBundle], actionEnv({}, { GITHUB_OUTPUT: '/dev/null' })));
  const startupSeconds = median(startup.map((s) => s.seconds));

  for (const mb of sizes) {
    const db = await pg.createDatabase(`bench${mb}`);
    process.stderr.write(`Seeding ~${mb} MB of random text...\n`);
    await seedRandomText(pg, db, mb);
    const dbBytes = await databaseBytes(pg, db);
    const env = { ...pgEnv, DBURL: pg.url(db, '').replace(':@', '@') };
    const dump = 'pg_dump -Fc -Z0 --no-password --dbname="$DBURL"';

    const rows: Record<string, Row> = {
      dump: { label: '`pg_dump -Fc -Z0 > /dev/null`', runs: [] },
      zstd: { label: '`pg_dump -Fc -Z0 \\| zstd -1 -T0 > /dev/null`', runs: [] },
      limit: { label: '**limit**: `pg_dump -Fc -Z0 \\| zstd -1 -T0 \\| sha256sum`', runs: [] },
      discard: { label: 'pgdump-to-s3 (zstd) into the discarding endpoint', runs: [] },
      discardAge: { label: 'pgdump-to-s3 (zstd + age) into the discarding endpoint', runs: [] },
      discardTls: {
        label: 'pgdump-to-s3 (zstd) into the discarding endpoint over https, CRC32 (as on AWS)',
        runs: [],
      },
      s3rver: { label: 'pgdump-to-s3 (zstd) into s3rver', runs: [] },
      s3rverAge: { label: 'pgdump-to-s3 (zstd + age) into s3rver', runs: [] },
      ...(oldBundle
        ? {
            old: { label: 'BENCH_OLD_BUNDLE build into the discarding endpoint', runs: [] },
            oldTls: { label: 'BENCH_OLD_BUNDLE build over https, CRC32', runs: [] },
          }
        : {}),
    };
    let stored = 0;
    const counts: number[] = [];
    const sdk: number[] = [];
    for (let round = 0; round < rounds; round++) {
      process.stderr.write(`${mb} MB, round ${round + 1}/${rounds}\n`);
      rows.dump!.runs.push(await sh(`${dump} > /dev/null`, env));
      rows.zstd!.runs.push(await sh(`${dump} | zstd -q -1 -T0 > /dev/null`, env));
      rows.limit!.runs.push(await sh(`${dump} | zstd -q -1 -T0 | sha256sum > /dev/null`, env));
      const d = await runAction(db, 'discard', {});
      stored = d.bytes;
      rows.discard!.runs.push(d);
      rows.discardAge!.runs.push(await runAction(db, 'discard', { 'age-recipients': recipient }));
      rows.discardTls!.runs.push(await runAction(db, 'discard-tls', {}));
      rows.s3rver!.runs.push(await runAction(db, 's3rver', {}));
      rows.s3rverAge!.runs.push(await runAction(db, 's3rver', { 'age-recipients': recipient }));
      if (oldBundle) {
        rows.old!.runs.push(await runAction(db, 'discard', {}, oldBundle));
        rows.oldTls!.runs.push(await runAction(db, 'discard-tls', {}, oldBundle));
      }
      const t0 = performance.now();
      await pg.query('SELECT count(*) FROM ONLY random_text', db);
      counts.push((performance.now() - t0) / 1000);
      sdk.push(await sdkFromMemory(stored));
    }
    const limit = secs(rows.limit!);
    const zstdOnly = secs(rows.zstd!);
    const dumpOnly = secs(rows.dump!);
    report.push(
      [
        `### ${(dbBytes / 1e9).toFixed(2)} GB database (random text, ${mb} MB requested; stored ${(stored / 1e6).toFixed(0)} MB), medians of ${rounds}`,
        '',
        `| Method | Seconds | × limit | Peak RSS MB (Node) | MB written to local disk | load average (1 min) at each start |`,
        '|---|---|---|---|---|---|',
        ...Object.values(rows).map((r) => fmtRow(r, limit)),
        '',
        'Stage costs (medians; each measured alone, so they overlap in the pipeline rather than add up):',
        '',
        '| Stage | Seconds |',
        '|---|---|',
        `| pg_dump alone | ${dumpOnly.toFixed(2)} |`,
        `| zstd -1 -T0 on top of pg_dump | ${(zstdOnly - dumpOnly).toFixed(2)} |`,
        `| sha256sum on top of pg_dump \\| zstd | ${(limit - zstdOnly).toFixed(2)} |`,
        `| age (native ChaCha20-Poly1305 in Node), action with age − without, discarding endpoint | ${(secs(rows.discardAge!) - secs(rows.discard!)).toFixed(2)} |`,
        `| upload of the stored bytes from memory into the discarding endpoint (the pooled multipart upload and the SDK, 8 MiB parts, 4 in flight) | ${median(sdk).toFixed(2)} |`,
        `| the manifest's exact row counts (count(*) of the table, run alongside the dump) | ${median(counts).toFixed(2)} |`,
        `| Node start-up (load the bundle, read the inputs, exit) | ${startupSeconds.toFixed(2)} |`,
        `| the action into the discarding endpoint − the limit | ${(secs(rows.discard!) - limit).toFixed(2)} |`,
        '',
      ].join('\n'),
    );
    process.stdout.write(report[report.length - 1] + '\n');
    await pg.query(`DROP DATABASE "${db}"`);
  }

  if (parallelMb > 0) {
    const db = await pg.createDatabase('benchmixed');
    process.stderr.write(`Seeding ~${parallelMb} MB over 30 tables of mixed sizes...\n`);
    await seedMixedTables(pg, db, parallelMb);
    const dbBytes = await databaseBytes(pg, db);
    const env = { ...pgEnv, DBURL: pg.url(db, '').replace(':@', '@') };
    const rows: Row[] = [];
    const limits = new Map<number, number>();
    for (const jobs of jobsList) {
      const dir = path.join(work, 'fd');
      const limit: Row = {
        label: `**parallel limit**: \`pg_dump -Fd -j ${jobs} -Z0\` + \`zstd -1 -T0\` to local disk`,
        runs: [],
      };
      const action: Row = { label: `pgdump-to-s3 \`jobs: ${jobs}\` (zstd) into the discarding endpoint`, runs: [] };
      const actionS3: Row = { label: `pgdump-to-s3 \`jobs: ${jobs}\` (zstd) into s3rver`, runs: [] };
      for (let round = 0; round < rounds; round++) {
        process.stderr.write(`mixed tables, jobs ${jobs}, round ${round + 1}/${rounds}\n`);
        rmSync(dir, { recursive: true, force: true });
        limit.runs.push(
          await sh(
            `pg_dump -Fd -j ${jobs} -Z0 --no-password --dbname="$DBURL" -f "${dir}" && zstd -q -1 -T0 -r --rm "${dir}"`,
            env,
          ),
        );
        action.runs.push(await runAction(db, 'discard', { jobs: String(jobs) }));
        actionS3.runs.push(await runAction(db, 's3rver', { jobs: String(jobs) }));
      }
      rmSync(dir, { recursive: true, force: true });
      limits.set(jobs, secs(limit));
      rows.push(limit, action, actionS3);
    }
    report.push(
      [
        `### Parallel dumps: ${(dbBytes / 1e9).toFixed(2)} GB over 30 tables of mixed sizes, medians of ${rounds}`,
        '',
        `| Method | Seconds | × the parallel limit with the same N | Peak RSS MB (Node) | MB written to local disk | load average (1 min) at each start |`,
        '|---|---|---|---|---|---|',
        ...rows.map((r) => fmtRow(r, limits.get(Number(/(?:-j |jobs: )(\d+)/.exec(r.label)![1]))!)),
        '',
      ].join('\n'),
    );
    process.stdout.write(report[report.length - 1] + '\n');
  }
} finally {
  await Promise.all([pg.stop(), s3.stop(), discard.stop(), discardTls.stop()]);
  rmSync(work, { recursive: true, force: true });
}
