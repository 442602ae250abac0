import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  findSecretsInLogs,
  fixture,
  runBundle,
  runCli,
  startPostgres,
  startS3,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

/** A monitoring service that records every ping; `behave` decides how it answers. */
interface Ping {
  method: string;
  path: string;
  query: string;
  body: string;
}
async function startMonitor(behave: (p: Ping, res: http.ServerResponse) => void = (_p, res) => res.end('OK')) {
  const pings: Ping[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const p = { method: req.method!, path: url.pathname, query: url.search, body };
      pings.push(p);
      behave(p, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    pings,
    base,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let pg: TestPostgres;
let s3: TestS3;
let sourceUrl: string;
beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  const db = await pg.createDatabase('hb');
  await pg.query(fixture('clinic.sql'), db);
  sourceUrl = pg.url(db);
});
afterAll(async () => Promise.all([pg?.stop(), s3?.stop()]));

const s3Inputs = (bucket: string) => ({
  's3-bucket': bucket,
  's3-endpoint': s3.endpoint,
  's3-force-path-style': 'true',
});

test('a backup pings /start, then the bare URL with what ran and the run URL; the URL never reaches the log', async () => {
  const monitor = await startMonitor();
  const bucket = await s3.createBucket('hb');
  const url = `${monitor.base}/ping/5f1c-secret-uuid`;
  try {
    const r = await runBundle(
      'pgdump-to-s3',
      { 'database-url': sourceUrl, database: 'app', ...s3Inputs(bucket), 'heartbeat-url': url },
      s3.env,
    );
    expect(r.errors).toEqual([]);
    expect(monitor.pings.map((p) => `${p.method} ${p.path}`)).toEqual([
      'POST /ping/5f1c-secret-uuid/start',
      'POST /ping/5f1c-secret-uuid',
    ]);
    const success = monitor.pings[1]!.body;
    expect(success).toMatch(/^pgdump-to-s3 in octo-org\/app succeeded\n/);
    expect(success).toContain(`backup-id: ${r.outputs['backup-id']}`);
    expect(success).toContain('run: https://github.com/octo-org/app/actions/runs/4242');
    expect(findSecretsInLogs([url, '5f1c-secret-uuid'])).toEqual([]);
  } finally {
    await monitor.stop();
  }
});

test('a failed verification pings /fail with the error; a failed prune too', async () => {
  const monitor = await startMonitor();
  const bucket = await s3.createBucket('hb-fail');
  try {
    const v = await runBundle(
      'verify-restore',
      {
        database: 'nothing-here',
        ...s3Inputs(bucket),
        'target-url': pg.url('postgres'),
        'heartbeat-url': monitor.base,
      },
      s3.env,
    );
    expect(v.exitCode).not.toBe(0);
    expect(monitor.pings.map((p) => p.path)).toEqual(['/start', '/fail']);
    expect(monitor.pings[1]!.body).toMatch(/^verify-restore in octo-org\/app FAILED\nNo complete backup under/);

    // Bad input fails before any work, and before any ping: no start without an end.
    monitor.pings.length = 0;
    const bad = await runBundle(
      'prune-retention',
      { database: 'app', ...s3Inputs(bucket), 'heartbeat-url': 'hc-ping.com/uuid' },
      s3.env,
    );
    expect(bad.errors.join('\n')).toMatch(/Input `heartbeat-url`: is not an http\(s\) ping URL/);
    expect(monitor.pings).toEqual([]);

    const p = await runBundle(
      'prune-retention',
      { database: 'app', ...s3Inputs(bucket), 'heartbeat-url': monitor.base + '/' },
      s3.env,
    );
    expect(p.exitCode).not.toBe(0);
    expect(monitor.pings.map((x) => x.path)).toEqual(['/start', '/fail']);
    expect(monitor.pings[1]!.body).toContain('No keep rule is set');
  } finally {
    await monitor.stop();
  }
});

test('a monitor that fails or hangs only warns: the backup succeeds', async () => {
  const failing = await startMonitor((_p, res) => {
    res.statusCode = 500;
    res.end('down');
  });
  // Never answers: the ping must give up after its timeout (shortened here) and the backup carry on.
  const hanging = await startMonitor(() => undefined);
  const bucket = await s3.createBucket('hb-bad');
  try {
    const a = await runBundle(
      'pgdump-to-s3',
      { 'database-url': sourceUrl, database: 'app', ...s3Inputs(bucket), 'heartbeat-url': failing.base + '/x' },
      s3.env,
    );
    expect(a.errors).toEqual([]);
    expect(a.outputs['backup-id']).toBeTruthy();
    expect(a.logs).toMatch(/::warning::Heartbeat "start" ping answered HTTP 500/);
    expect(a.logs).toMatch(/::warning::Heartbeat "success" ping answered HTTP 500/);
    expect(failing.pings.map((p) => p.path)).toEqual(['/x/start', '/x']);

    const b = await runBundle(
      'pgdump-to-s3',
      { 'database-url': sourceUrl, database: 'app', ...s3Inputs(bucket), 'heartbeat-url': hanging.base + '/y' },
      { ...s3.env, PBA_HEARTBEAT_TIMEOUT_MS: '300' },
    );
    expect(b.errors).toEqual([]);
    expect(b.outputs['backup-id']).toBeTruthy();
    expect(b.logs).toMatch(/::warning::Heartbeat "start" ping failed \(no answer within 0.3 s\)/);
    expect(hanging.pings.map((p) => p.path)).toEqual(['/y/start', '/y']);
  } finally {
    await Promise.all([failing.stop(), hanging.stop()]);
  }
});

test('the CLI pings too', async () => {
  const monitor = await startMonitor();
  const bucket = await s3.createBucket('hb-cli');
  try {
    const r = await runCli(
      [
        'backup',
        '--database-url',
        sourceUrl,
        '--database',
        'app',
        '--s3-bucket',
        bucket,
        '--s3-endpoint',
        s3.endpoint,
        '--s3-force-path-style',
        'true',
        '--heartbeat-url',
        `${monitor.base}/ping/cli`,
      ],
      s3.env,
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.exitCode).toBe(0);
    expect(monitor.pings.map((p) => p.path)).toEqual(['/ping/cli/start', '/ping/cli']);
    expect(monitor.pings[1]!.body).toMatch(/^pgdump-to-s3 succeeded\n/);
  } finally {
    await monitor.stop();
  }
});
