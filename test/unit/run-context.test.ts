import { githubContext } from '../../src/lib/manifest.js';
import { runContext, runUrlOf } from '../../src/lib/run-context.js';

const actions = {
  GITHUB_ACTIONS: 'true',
  GITHUB_REPOSITORY: 'acme/app',
  GITHUB_RUN_ID: '42',
  GITHUB_RUN_ATTEMPT: '3',
  GITHUB_SHA: 'abc',
  GITHUB_WORKSPACE: '/w',
  GITHUB_STEP_SUMMARY: '/s',
};

test.each([
  // environment, expected fields
  [
    'a workflow step',
    actions,
    {
      insideActions: true,
      runId: '42',
      runAttempt: 3,
      workspace: '/w',
      stepSummaryPath: '/s',
      runUrl: 'https://github.com/acme/app/actions/runs/42',
    },
  ],
  [
    'a laptop',
    {},
    {
      insideActions: false,
      repository: undefined,
      runAttempt: 1,
      serverUrl: 'https://github.com',
      apiUrl: 'https://api.github.com',
      runUrl: undefined,
    },
  ],
  [
    'GHES with trailing slashes',
    { ...actions, GITHUB_SERVER_URL: 'https://ghe.example/', GITHUB_API_URL: 'https://ghe.example/api/v3/' },
    {
      serverUrl: 'https://ghe.example',
      apiUrl: 'https://ghe.example/api/v3',
      runUrl: 'https://ghe.example/acme/app/actions/runs/42',
    },
  ],
  [
    'empty variables are absent',
    { GITHUB_REPOSITORY: '', GITHUB_RUN_ID: '', GITHUB_RUN_ATTEMPT: 'x' },
    { repository: undefined, runId: undefined, runAttempt: 1, runUrl: undefined },
  ],
  [
    'a repository without a run id has no run URL',
    { GITHUB_REPOSITORY: 'acme/app' },
    { repository: 'acme/app', runUrl: undefined },
  ],
])('%s', (_name, env, expected) => {
  expect(runContext(env)).toMatchObject(expected);
});

test('runUrlOf drops a trailing slash of the server', () => {
  expect(runUrlOf('https://github.com/', 'a/b', '1')).toBe('https://github.com/a/b/actions/runs/1');
});

test.each([
  [
    'inside Actions',
    actions,
    { repository: 'acme/app', runId: '42', sha: 'abc', runUrl: 'https://github.com/acme/app/actions/runs/42' },
  ],
  ['outside Actions (the CLI on a laptop, even with a repository set)', { GITHUB_REPOSITORY: 'acme/app' }, null],
])('the manifest names the run %s', (_name, env, expected) => {
  expect(githubContext(runContext(env))).toEqual(expected);
});
