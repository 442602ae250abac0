// npm run bench:backup — pg_dump limit vs the seeds' gzip pipeline vs pgdump-to-s3 (plain and age) vs the S3
// server's own ceiling, on databases of random text (BENCH_SIZES_MB, default "1000,3000"). Prints; asserts nothing.
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { exec, parseOutputFile, startPostgres, startS3 } from '../test/harness/index.js';
import { actionEnv, bundle, databaseBytes, mbps, seedRandomText, timed } from './common.js';

const sizes = (process.env.BENCH_SIZES_MB ?? '1000,3000').split(',').map(Number);
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-backup-'));
const [pg, s3] = await Promise.all([startPostgres(), startS3()]);
const bucket = await s3.createBucket('bench');
const pgEnv = { ...process.env, PGPASSWORD: pg.password };
const keyFile = path.join(work, 'age.key');
await exec('age-keygen', ['-o', keyFile]);
const recipient = (await exec('age-keygen', ['-y', keyFile])).toString().trim();
const PART = 16 * 1024 * 1024;

async function uploadFromMemory(bytes: number): Promise<number> {
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
  await new Upload({
    client: s3.client,
    partSize: PART,
    queueSize: 4,
    params: { Bucket: bucket, Key: `ceiling-${bytes}`, Body: body },
  }).done();
  return (performance.now() - t0) / 1000;
}

async function runAction(db: string, extra: Record<string, string>) {
  const out = path.join(work, 'out');
  writeFileSync(out, '');
  const inputs = {
    'database-url': pg.url(db),
    's3-bucket': bucket,
    's3-endpoint': s3.endpoint,
    's3-force-path-style': 'true',
    's3-prefix': 'postgres-backups',
    's3-checksum': 'auto',
    'storage-class': 'STANDARD',
    sse: 'AES256',
    compression: 'zstd',
    'lock-wait-timeout': '30s',
    kind: 'scheduled',
    ...extra,
  };
  const r = await timed(
    process.execPath,
    [bundle('pgdump-to-s3')],
    actionEnv(inputs, { ...s3.env, GITHUB_OUTPUT: out }),
  );
  if (r.code !== 0) throw new Error(`action failed: ${r.stderr}`);
  const outputs = parseOutputFile(readFileSync(out, 'utf8'));
  return { ...r, bytes: Number(outputs.bytes) };
}

const results: string[] = [];
try {
  for (const mb of sizes) {
    const db = await pg.createDatabase(`bench${mb}`);
    process.stderr.write(`Seeding ~${mb} MB of random text...\n`);
    await seedRandomText(pg, db, mb);
    const dbBytes = await databaseBytes(pg, db);
    const dbArgs = ['--no-password', `--dbname=${pg.url(db, '')}`.replace(':@', '@')];

    const a = await timed('pg_dump', ['-Fc', '-Z0', ...dbArgs], pgEnv, '/dev/null');
    const gzFile = path.join(work, 'dump.gz');
    // The seeds' pipeline: pg_dump -Fc | gzip > file, then upload the file.
    const b1 = await timed('sh', ['-c', `pg_dump -Fc --no-password --dbname="$DBURL" | gzip > "${gzFile}"`], {
      ...pgEnv,
      DBURL: pg.url(db, '').replace(':@', '@'),
    });
    const gzBytes = statSync(gzFile).size;
    const t0 = performance.now();
    await new Upload({
      client: s3.client,
      partSize: PART,
      queueSize: 4,
      params: { Bucket: bucket, Key: `seeds-${mb}.gz`, Body: createReadStream(gzFile) },
    }).done();
    const b = b1.seconds + (performance.now() - t0) / 1000;
    rmSync(gzFile);
    const c = await runAction(db, {});
    const cAge = await runAction(db, { 'age-recipients': recipient });
    const d = await uploadFromMemory(c.bytes);
    const rawDump = dbBytes; // throughput is reported against the database size, the same for every method
    results.push(
      [
        `### ${(dbBytes / 1e9).toFixed(2)} GB database (random text, ${mb} MB requested)`,
        '',
        '| Method | Seconds | MB/s of database | Stored MB | Peak RSS MB |',
        '|---|---|---|---|---|',
        `| (a) pg_dump -Fc -Z0 > /dev/null (the limit) | ${a.seconds.toFixed(1)} | ${mbps(rawDump, a.seconds)} | - | - |`,
        `| (b) pg_dump -Fc \\| gzip > file, then upload | ${b.toFixed(1)} | ${mbps(rawDump, b)} | ${(gzBytes / 1e6).toFixed(0)} | - |`,
        `| (c) pgdump-to-s3 (zstd) | ${c.seconds.toFixed(1)} | ${mbps(rawDump, c.seconds)} | ${(c.bytes / 1e6).toFixed(0)} | ${c.peakRssMb.toFixed(0)} |`,
        `| (c) pgdump-to-s3 (zstd + age) | ${cAge.seconds.toFixed(1)} | ${mbps(rawDump, cAge.seconds)} | ${(cAge.bytes / 1e6).toFixed(0)} | ${cAge.peakRssMb.toFixed(0)} |`,
        `| (d) S3 server ceiling: upload ${(c.bytes / 1e6).toFixed(0)} MB from memory | ${d.toFixed(1)} | ${mbps(c.bytes, d)} (of stored bytes) | - | - |`,
        '',
        `c/a = ${(c.seconds / a.seconds).toFixed(2)}, of which the upload ceiling alone is ${(d / a.seconds).toFixed(2)}; b/c = ${(b / c.seconds).toFixed(1)}x; age costs ${((1 - c.seconds / cAge.seconds) * 100).toFixed(0)} % of throughput.`,
        '',
      ].join('\n'),
    );
    process.stdout.write(results[results.length - 1] + '\n');
    await pg.query(`DROP DATABASE "${db}"`);
  }
} finally {
  await Promise.all([pg.stop(), s3.stop()]);
  rmSync(work, { recursive: true, force: true });
}
