// `npm run drill`: a disaster-recovery rehearsal on embedded defaults. A throwaway Postgres seeded with a small
// clinic and the embedded S3 server; then the CLI bundle (exactly what users run) backs up, lists, verifies, and
// after a simulated disaster restores into a new database and proves the data came back. Leaves nothing running.
import {
  cliArgs,
  fixture,
  runCli,
  s3TestInputs,
  startPostgres,
  startS3,
  tableCounts,
  type TestPostgres,
  type TestS3,
} from '../test/harness/index.js';

const t0 = performance.now();
const step = (n: number, text: string) => console.log(`\n[${n}] ${text}`);
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
let pg: TestPostgres | undefined;
let s3: TestS3 | undefined;

async function cli(args: string[]): Promise<unknown> {
  console.log(
    `    $ postgres-backup ${args.map((a) => (a.startsWith('postgres://') ? 'postgres://***' : a)).join(' ')}`,
  );
  const out = await runCli(args, s3!.env);
  for (const line of out.stderr.split('\n').filter(Boolean)) console.log(`      ${line}`);
  if (out.exitCode !== 0) throw new Error(`postgres-backup ${args[0]} failed (exit ${out.exitCode})`);
  return JSON.parse(out.stdout);
}

const counts = (db: string) => tableCounts(pg!, db);

function table(before: Map<string, number>, after: Map<string, number>, restored?: Map<string, number>): void {
  console.log(
    `    ${'table'.padEnd(22)}${'before'.padStart(9)}${'after disaster'.padStart(16)}${restored ? 'restored'.padStart(10) : ''}`,
  );
  for (const [t, n] of before) {
    const a = after.has(t) ? String(after.get(t)) : 'DROPPED';
    console.log(
      `    ${t.padEnd(22)}${String(n).padStart(9)}${a.padStart(16)}${restored ? String(restored.get(t) ?? 'missing').padStart(10) : ''}`,
    );
  }
}

try {
  step(1, 'Starting a throwaway PostgreSQL cluster and the embedded S3 server on 127.0.0.1');
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const db = await pg.createDatabase('clinic');
  await pg.query(fixture('clinic.sql'), db);
  const bucket = await s3.createBucket('drill');
  console.log(`    postgres on port ${pg.port} (database ${db}), S3 at ${s3.endpoint}, bucket ${bucket}`);
  const s3Args = cliArgs(s3TestInputs(s3.endpoint, bucket, 'clinic'));
  const before = await counts(db);

  step(2, 'Nightly backup: pg_dump | zstd | S3, manifest written last');
  const backup = (await cli(['backup', '--database-url', pg.url(db), ...s3Args])) as Record<string, string>;

  step(3, 'Scheduled verification: restore into a scratch database, compare every row count');
  const verified = (await cli(['verify', ...s3Args, '--target-url', pg.url('postgres')])) as Record<string, string>;

  step(4, 'What is stored');
  await cli(['list', ...s3Args]);

  step(5, 'Disaster: someone drops audit_logs and deletes most visits');
  await pg.query('DROP TABLE audit_logs; DELETE FROM visits WHERE id % 10 <> 0;', db);
  const after = await counts(db);
  table(before, after);

  step(6, 'Recovery: restore the latest backup into a new database (restore mode, confirmed by name)');
  const recovered = await pg.createDatabase('clinic_recovered');
  const restored = (await cli([
    'restore',
    ...s3Args,
    '--target-url',
    pg.url(recovered),
    '--confirm',
    recovered,
  ])) as Record<string, string>;

  step(7, 'Proof: every table has its rows back');
  const back = await counts(recovered);
  table(before, after, back);
  const lost = [...before].filter(([t, n]) => back.get(t) !== n);
  if (lost.length) throw new Error(`rows missing after restore: ${lost.map(([t]) => t).join(', ')}`);

  console.log(`\nBackup ${backup['backup-id']}: ${backup.bytes} bytes, ${backup.tables} tables, ${backup.rows} rows.`);
  console.log(`Verification: ${verified.status}, RTO ${verified['rto-seconds']} s, RPO ${verified['rpo-seconds']} s.`);
  console.log(
    `Recovery into ${recovered}: ${restored.status}, RTO ${restored['rto-seconds']} s, RPO ${restored['rpo-seconds']} s.`,
  );
  console.log(`\nDrill passed in ${elapsed()}.`);
} catch (e) {
  console.error(`\nDrill FAILED after ${elapsed()}: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await Promise.all([pg?.stop(), s3?.stop()]);
}
