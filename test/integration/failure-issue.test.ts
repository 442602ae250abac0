import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findSecretsInLogs, repoRoot, runBundle, runCli } from '../harness/index.js';
import { GitHubTestServer } from '../harness/github-server.js';
import { OpenApiValidator } from '../harness/openapi.js';
import { readState } from '../../src/core/failure-issue.js';

let gh: GitHubTestServer;
let runId = 100;

function report(inputs: Record<string, string>, env: Record<string, string> = {}) {
  runId++;
  return runBundle(
    'open-failure-issue',
    { 'github-token': gh.token, database: 'app', ...inputs },
    { GITHUB_API_URL: gh.url, GITHUB_RUN_ID: String(runId), GITHUB_WORKFLOW: 'Nightly backup', ...env },
  );
}
const mine = (key = 'Nightly backup / app') => gh.issues.filter((i) => readState(i.body)?.key === key);

beforeAll(async () => {
  gh = new GitHubTestServer();
  await gh.start();
});
afterAll(async () => gh?.stop());

describe('open-failure-issue lifecycle', () => {
  test('a failure opens one issue with what failed, since when, and what to do; the label is created', async () => {
    gh.jobs = [
      {
        name: 'backup',
        conclusion: 'failure',
        steps: [
          { name: 'Checkout', conclusion: 'success' },
          { name: 'pg_dump to S3', conclusion: 'failure' },
        ],
      },
      { name: 'prune', conclusion: 'skipped', steps: [] },
    ];
    const run = await report({
      status: 'failure',
      details: JSON.stringify({
        'backup-id': '20261121T020000Z-3f9a',
        error: 'Authentication failed | check password',
      }),
      'runbook-url': 'https://example.com/runbook',
      'slack-webhook-url': `${gh.url}/slack/hook`,
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.action).toBe('created');
    const issue = mine()[0]!;
    expect(run.outputs['issue-number']).toBe(String(issue.number));
    expect(run.outputs['issue-url']).toBe(`https://github.com/octo-org/app/issues/${issue.number}`);
    expect(issue.title).toBe('Backup failing: Nightly backup / app');
    expect(issue.labels).toEqual(['backup-failure']);
    expect(gh.labels.has('backup-failure')).toBe(true);
    expect(issue.body).toContain(
      `[Nightly backup run ${runId}](https://github.com/octo-org/app/actions/runs/${runId})`,
    );
    expect(issue.body).toContain('step **pg_dump to S3**');
    expect(issue.body).not.toContain('prune');
    expect(issue.body).toContain('| backup-id | 20261121T020000Z-3f9a |');
    expect(issue.body).toContain('Authentication failed \\| check password');
    expect(issue.body).toContain('### What to do');
    expect(issue.body).toContain('[runbook](https://example.com/runbook)');
    expect(gh.slack).toEqual([{ text: `❌ Backup failing: Nightly backup / app — ${run.outputs['issue-url']}` }]);
  });

  test('a repeat failure comments with the count and duration instead of opening another', async () => {
    const run = await report({ status: 'failure' });
    expect(run.outputs.action).toBe('commented');
    expect(mine()).toHaveLength(1);
    const issue = mine()[0]!;
    expect(issue.comments.at(-1)).toMatch(/Failed again\*\* in \[Nightly backup run \d+\]/);
    expect(issue.comments.at(-1)).toMatch(/2 failed runs since/);
    expect(issue.body).toContain('"failures":2');
  });

  test('success closes it, saying after how many failures and how long', async () => {
    const run = await report({ status: 'success', 'slack-webhook-url': `${gh.url}/slack/hook` });
    expect(run.outputs.action).toBe('closed');
    const issue = mine()[0]!;
    expect(issue.state).toBe('closed');
    expect(issue.state_reason).toBe('completed');
    expect(issue.comments.at(-1)).toMatch(/Recovered\*\* in \[run \d+\]\(.*\) after 2 failed run\(s\) over [\d.]+ s/);
    expect((gh.slack.at(-1) as { text: string }).text).toMatch(
      /^✅ Recovered: Nightly backup \/ app, after 2 failed run\(s\)/,
    );
  });

  test('success with no open issue does nothing', async () => {
    const before = gh.responses.filter((r) => r.method !== 'GET').length;
    const run = await report({ status: 'success' });
    expect(run.outputs.action).toBe('none');
    expect(run.outputs['issue-number']).toBe('');
    expect(gh.responses.filter((r) => r.method !== 'GET').length).toBe(before);
  });

  test('cancelled does nothing unless asked', async () => {
    expect((await report({ status: 'cancelled', key: 'cancel-stream' })).outputs.action).toBe('none');
    expect(mine('cancel-stream')).toHaveLength(0);
    expect(
      (await report({ status: 'cancelled', key: 'cancel-stream', 'on-cancelled': 'failure' })).outputs.action,
    ).toBe('created');
  });
});

describe('open-failure-issue at scale and under races', () => {
  test('finds its issue past 100 open issues (pagination, not search)', async () => {
    const first = await report({ status: 'failure', key: 'paged' });
    expect(first.outputs.action).toBe('created');
    for (let i = 0; i < 150; i++)
      gh.addIssue({
        title: `other ${i}`,
        body: `<!-- postgres-backup-actions:failure {"key":"other-${i}","since":"2026-01-01T00:00:00Z","failures":1} -->`,
        labels: ['backup-failure'],
      });
    gh.addIssue({ title: 'a pull request', body: 'x', labels: ['backup-failure'], pull_request: true });
    const run = await report({ status: 'failure', key: 'paged' });
    expect(run.outputs.action).toBe('commented');
    expect(run.outputs['issue-number']).toBe(first.outputs['issue-number']);
    expect(mine('paged')).toHaveLength(1);
  });

  test('two runs failing at once leave one open issue: the newer closes as a duplicate', async () => {
    gh.raceOnCreate = true;
    const run = await report({ status: 'failure', key: 'race' });
    expect(run.errors).toEqual([]);
    const issues = mine('race');
    expect(issues).toHaveLength(2);
    const [older, newer] = issues;
    expect(older!.state).toBe('open');
    expect(newer!.state).toBe('closed');
    expect(newer!.state_reason).toBe('not_planned');
    expect(newer!.comments).toEqual([
      `Duplicate of #${older!.number} (another run reported the same failure at the same time).`,
    ]);
    expect(run.outputs).toMatchObject({ action: 'commented', 'issue-number': String(older!.number) });
  });
});

describe('open-failure-issue permissions and inputs', () => {
  test('403 on issues names the permission and the permissions block to add', async () => {
    gh.forbidden = [/^POST .*\/issues$/];
    try {
      const run = await report({ status: 'failure', key: 'forbidden' });
      expect(run.exitCode).toBe(1);
      const message = run.errors.join('\n');
      expect(message).toContain('GitHub refused creating an issue (403): the token needs `issues: write`');
      expect(message).toContain('permissions:');
      expect(message).toContain('issues: write');
    } finally {
      gh.forbidden = [];
    }
  });

  test('5xx on reads are retried by the one retry policy; the issue is opened once', async () => {
    const fault = { match: /^GET .*\/issues$/, status: 503, times: 2 };
    gh.faults = [fault];
    const run = await report({ status: 'failure', key: 'flaky-read' });
    expect(run.errors).toEqual([]);
    expect(run.outputs.action).toBe('created');
    // Both 503s were answered (and retried past): without a retry the first one fails the step.
    expect(fault.times).toBe(0);
    expect(mine('flaky-read')).toHaveLength(1);
  });

  test('a secondary rate limit on creating the issue is waited out, and the issue is created exactly once', async () => {
    gh.faults = [
      {
        match: /^POST .*\/issues$/,
        status: 403,
        times: 1,
        headers: { 'retry-after': '1', 'x-ratelimit-remaining': '0' },
      },
    ];
    const before = gh.requests.length;
    const run = await report({ status: 'failure', key: 'rate-limited' });
    expect(run.errors).toEqual([]);
    expect(run.outputs.action).toBe('created');
    expect(gh.requests.slice(before).filter((r) => /^POST .*\/issues$/.test(r))).toHaveLength(2);
    expect(mine('rate-limited')).toHaveLength(1);
  });

  test('a 502 on creating the issue is not retried (it may have been applied): a fault that says re-running is safe', async () => {
    gh.faults = [{ match: /^POST .*\/issues$/, status: 502, times: 1 }];
    const before = gh.requests.length;
    const run = await report({ status: 'failure', key: 'create-502' });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toContain(
      'GitHub failed (502) while creating an issue. This is a fault of GitHub or the network; re-running is safe.',
    );
    expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
    expect(gh.requests.slice(before).filter((r) => /^POST .*\/issues$/.test(r))).toHaveLength(1);
  });

  test('GitHub down for every attempt of a read: the step says what failed, how often it tried, and that re-running is safe', async () => {
    gh.faults = [{ match: /^GET .*\/issues$/, status: 500, times: 100 }];
    try {
      const run = await report({ status: 'failure', key: 'down' });
      expect(run.exitCode).toBe(1);
      expect(run.errors.join('\n')).toContain(
        'GitHub failed (500) while listing open issues after 5 attempts. This is a fault of GitHub or the network; re-running is safe.',
      );
      expect(run.logs).not.toMatch(/Unexpected error|a bug|^\s+at /m);
      expect(mine('down')).toHaveLength(0);
    } finally {
      gh.faults = [];
    }
  }, 120_000);

  test('without actions: read the issue is still opened, without the job list, and the log says why', async () => {
    gh.forbidden = [/actions\/runs/];
    try {
      const run = await report({ status: 'failure', key: 'no-actions-read' });
      expect(run.outputs.action).toBe('created');
      expect(run.logs).toContain('the token needs `actions: read`');
      expect(mine('no-actions-read')[0]!.body).toContain('failed jobs unavailable');
    } finally {
      gh.forbidden = [];
    }
  });

  test.each<[Record<string, string>, RegExp]>([
    [{ status: 'broken' }, /Input `status`: "broken" is not one of/],
    [{ status: 'failure', details: '[1,2]' }, /Input `details`: is not a JSON object/],
    [{ status: 'failure', details: 'oops' }, /Input `details`: is not a JSON object/],
    [{ status: 'failure', labels: ' , ' }, /Input `labels`: is empty/],
    [{ status: 'failure', repository: 'just-a-name' }, /Input `repository`: "just-a-name" is not owner\/repo/],
    [{ status: 'failure', 'on-cancelled': 'maybe' }, /Input `on-cancelled`: "maybe" is not one of/],
  ])('%j is named', async (inputs, message) => {
    const run = await report(inputs);
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
  });

  test('the CLI reports with the same options', async () => {
    const out = await runCli(
      ['report-status', '--status', 'failure', '--key', 'from-cli', '--repository', 'octo-org/app'],
      { GITHUB_API_URL: gh.url, GITHUB_TOKEN: gh.token, GITHUB_RUN_ID: '1' },
    );
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ action: 'created' });
    expect(out.stderr).not.toContain(gh.token);
  });
});

test("every response of the test server matches GitHub's OpenAPI description (@octokit/openapi)", () => {
  const spec = JSON.parse(
    readFileSync(path.join(repoRoot, 'node_modules/@octokit/openapi/generated/api.github.com.json'), 'utf8'),
  ) as Record<string, unknown>;
  const validator = new OpenApiValidator(spec);
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const r of gh.responses) {
    if (r.template === 'error') continue;
    const [p, method] = r.template.split(' ');
    seen.add(`${r.template} ${r.status}`);
    if (r.status === 404 && p === '/repos/{owner}/{repo}/labels/{name}') continue; // basic-error
    problems.push(...validator.validateResponse(p!, method!, r.status, r.body));
  }
  expect(problems.slice(0, 10)).toEqual([]);
  expect(seen.size).toBeGreaterThanOrEqual(7);
}, 60_000);

test('the token and the Slack webhook are absent from every log line', () => {
  expect(findSecretsInLogs([gh.token, `${gh.url}/slack/hook`])).toEqual([]);
});
