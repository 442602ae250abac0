// local probe (not committed): seed once, run bundles given in PROBE_BUNDLES (comma list) PROBE_ROUNDS times.
import { readFileSync, writeFileSync } from 'node:fs';
import { startPostgres } from '../test/harness/index.js';
import { startDiscardS3 } from '../test/harness/discard-s3.js';
import { actionEnv, seedRandomText, timed } from './common.js';
const [pg, discard] = await Promise.all([startPostgres(), startDiscardS3()]);
const mb = Number(process.env.PROBE_MB ?? 1000);
const db = await pg.createDatabase('probe');
await seedRandomText(pg, db, mb);
const env = { PGPASSWORD: pg.password, DBURL: pg.url(db, '').replace(':@', '@') };
const lim = () => timed('bash', ['-o', 'pipefail', '-c', 'pg_dump -Fc -Z0 --no-password --dbname="$DBURL" | zstd -1 -T0 | sha256sum'], { ...process.env, ...env });
const bundles = (process.env.PROBE_BUNDLES ?? '').split(',');
const prof = process.env.PROBE_PROF;
for (let r = 0; r < Number(process.env.PROBE_ROUNDS ?? 3); r++) {
  const l = await lim();
  const row = [`limit ${l.seconds.toFixed(2)}`];
  for (const b of bundles) {
    writeFileSync('/tmp/probe/out', '');
    const inputs = {
      'database-url': pg.url(db), 's3-bucket': 'discard', 's3-endpoint': discard.endpoint, 's3-force-path-style': 'true',
      's3-prefix': 'p', 's3-checksum': 'auto', sse: 'AES256', compression: 'zstd', 'lock-wait-timeout': '30s', kind: 'scheduled', globals: 'true',
      ...(process.env.PROBE_AGE ? { 'age-recipients': process.env.PROBE_AGE } : {}),
    };
    const args = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, b] : [b];
    const t = await timed(process.execPath, args, actionEnv(inputs, { GITHUB_OUTPUT: '/tmp/probe/out', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' }));
    if (t.code !== 0) throw new Error(t.stderr);
    row.push(`${b.split('/').slice(-2).join('/')} ${t.seconds.toFixed(2)} (${(t.seconds / l.seconds).toFixed(2)}x, ${t.peakRssMb.toFixed(0)} MB)`);
  }
  console.log(row.join(' | '));
}
readFileSync('/tmp/probe/out', 'utf8');
await Promise.all([pg.stop?.(), discard.stop?.()]);
process.exit(0);
