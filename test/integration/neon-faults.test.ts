// The Neon adapter classifies failures from the reply's status, never from message text: a Neon outage or an
// unreachable API is a fault (what failed, that it was retried, that re-running is safe), a refused key is the
// user's to fix. Through the bundle, with the Neon test server.
import { createServer } from 'node:net';
import { fixture, runBundle, startPostgres, type ActionRun, type TestPostgres } from '../harness/index.js';
import { NeonTestServer } from '../harness/neon-server.js';

let db: TestPostgres;
let neon: NeonTestServer;

const env = { PBA_NEON_POLL_MS: '20', PBA_NEON_RETRY_BASE_MS: '20' };
const snapshot = (inputs: Record<string, string> = {}) =>
  runBundle(
    'neon-snapshot',
    {
      'neon-api-key': neon.apiKey,
      'neon-project-id': neon.projectId,
      'neon-api-host': neon.url,
      timeout: '5s',
      ...inputs,
    },
    env,
  );

/** A fault or a user error is reported, not a bug: one clear message, no stack trace. */
function expectCleanFailure(run: ActionRun) {
  expect(run.exitCode).toBe(1);
  expect(run.errors).toHaveLength(1);
  expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
  expect(run.logs).not.toContain(neon.apiKey);
}

beforeAll(async () => {
  db = await startPostgres();
  const mainDb = await db.createDatabase('neonfaults');
  await db.query(fixture('clinic.sql'), mainDb);
  neon = new NeonTestServer(db);
  await neon.start(mainDb);
});
afterAll(async () => {
  await neon?.stop();
  await db?.stop();
});
beforeEach(() => {
  neon.faults = [];
});

test('a Neon API answering 500 to every read: a fault after every retry, re-running is safe', async () => {
  neon.inject({ method: 'GET', path: /^\/projects\/[^/]+$/, status: 500, times: 1000 });
  const run = await snapshot({ name: 'outage' });
  expectCleanFailure(run);
  expect(run.errors[0]).toMatch(
    /Neon API: reading project \S+ failed \(500\).*failed after every retry; re-running is safe/,
  );
  // Retried, not given up at the first answer.
  expect(neon.requests.filter((r) => r.method === 'GET' && /\/projects\/[^/]+$/.test(r.path)).length).toBeGreaterThan(
    1,
  );
  expect([...neon.branches.values()].some((b) => b.name === 'outage')).toBe(false);
});

test('an unreachable Neon API: names the host, says to check neon-api-host, re-running is safe', async () => {
  // A port that was free a moment ago and is closed now: connections are refused.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const host = `http://127.0.0.1:${port}`;
  const run = await snapshot({ name: 'nowhere', 'neon-api-host': host });
  expectCleanFailure(run);
  expect(run.errors[0]).toContain(`Cannot reach the Neon API at ${host}`);
  expect(run.errors[0]).toMatch(/Check `neon-api-host` and the network; re-running is safe/);
});

test('a refused API key is a user error naming neon-api-key, not a fault', async () => {
  const run = await snapshot({ name: 'badkey', 'neon-api-key': 'not-the-key' });
  expectCleanFailure(run);
  expect(run.errors[0]).toMatch(/Neon API refused .*\(401\): check that `neon-api-key` is a valid API key/);
  expect(run.errors[0]).not.toMatch(/re-running is safe/);
});
