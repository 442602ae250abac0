import { heartbeatBody, heartbeatUrl } from '../../src/lib/heartbeat.js';
import { runContext } from '../../src/lib/run-context.js';

test.each([
  ['https://hc-ping.com/uuid', 'start', 'https://hc-ping.com/uuid/start'],
  ['https://hc-ping.com/uuid', 'success', 'https://hc-ping.com/uuid'],
  ['https://hc-ping.com/uuid', 'fail', 'https://hc-ping.com/uuid/fail'],
  ['https://hc-ping.com/uuid/', 'fail', 'https://hc-ping.com/uuid/fail'],
  [
    'https://uptime.betterstack.com/api/v1/heartbeat/tok',
    'fail',
    'https://uptime.betterstack.com/api/v1/heartbeat/tok/fail',
  ],
  ['https://cronitor.link/p/key/nightly', 'start', 'https://cronitor.link/p/key/nightly?state=run'],
  ['https://cronitor.link/p/key/nightly', 'success', 'https://cronitor.link/p/key/nightly?state=complete'],
  ['https://cronitor.link/p/key/nightly', 'fail', 'https://cronitor.link/p/key/nightly?state=fail'],
] as const)('%s %s -> %s', (base, signal, expected) => {
  expect(heartbeatUrl(base, signal)).toBe(expected);
});

test('the body says what ran, the result and the run', () => {
  const env = { GITHUB_REPOSITORY: 'a/b', GITHUB_RUN_ID: '7', GITHUB_SERVER_URL: 'https://ghe.example' };
  expect(heartbeatBody('prune-retention', 'fail', 'Listing failed', runContext(env))).toBe(
    'prune-retention in a/b FAILED\nListing failed\nrun: https://ghe.example/a/b/actions/runs/7\n',
  );
  expect(heartbeatBody('x', 'start', '', runContext({}))).toBe('x started\nrun: outside GitHub Actions\n');
});
