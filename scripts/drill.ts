// `npm run drill`: a disaster-recovery rehearsal on embedded defaults. A throwaway Postgres seeded with a small
// clinic, the embedded S3 server, then the CLI bundle (exactly what users run) backs up and lists what was stored.
// Leaves nothing running.
import {
  listKeys,
  repoRoot,
  runCli,
  startPostgres,
  startS3,
  fixture,
  type TestPostgres,
  type TestS3,
} from '../test/harness/index.js';

const t0 = performance.now();
const step = (n: number, text: string) => console.log(`\n[${n}] ${text}`);
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
let pg: TestPostgres | undefined;
let s3: TestS3 | undefined;

async function cli(args: string[]): Promise<Record<string, string>> {
  const out = await runCli(args, s3!.env);
  if (out.exitCode !== 0) {
    process.stderr.write(out.stderr);
    throw new Error(`postgres-backup ${args[0]} failed (exit ${out.exitCode})`);
  }
  for (const line of out.stderr.split('\n').filter(Boolean)) console.log(`    ${line}`);
  return JSON.parse(out.stdout) as Record<string, string>;
}

try {
  step(1, 'Starting a throwaway PostgreSQL cluster and the embedded S3 server on 127.0.0.1');
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const db = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), db);
  const bucket = await s3.createBucket('drill');
  console.log(`    postgres on port ${pg.port}, S3 at ${s3.endpoint}, bucket ${bucket}`);
  const s3Args = [
    '--s3-bucket',
    bucket,
    '--s3-endpoint',
    s3.endpoint,
    '--s3-force-path-style',
    'true',
    '--database',
    'clinic',
  ];

  step(2, 'Backing up with `postgres-backup backup` (pgdump-to-s3)');
  const backup = await cli(['backup', '--database-url', pg.url(db), ...s3Args]);
  console.log(`    backup ${backup['backup-id']}: ${backup.bytes} bytes, ${backup.tables} tables, ${backup.rows} rows`);

  step(3, 'What was stored');
  for (const key of await listKeys(s3.client, bucket)) console.log(`    s3://${bucket}/${key}`);

  console.log(`\nDrill passed in ${elapsed()}. (repository: ${repoRoot})`);
} catch (e) {
  console.error(`\nDrill FAILED after ${elapsed()}: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await Promise.all([pg?.stop(), s3?.stop()]);
}
