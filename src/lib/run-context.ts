/**
 * The GitHub Actions run this process belongs to, read from the environment once and in this one place (the
 * runner's `GITHUB_*` variables: https://docs.github.com/actions/reference/variables-reference). Pure: it reads
 * the env object it is given, never `process.env` behind the caller's back, so tests pass a plain object.
 *
 * `@actions/github`'s `context` is deliberately not used: importing that module builds its Octokit class on load
 * (REST endpoints, plugins), which would be bundled into every action that merely wants a run URL. The few
 * variables below are all we need.
 *
 * Handlers and hosts (the runtime, the CLI) read it; core code receives what it needs from them as parameters.
 */
export interface RunContext {
  /** `GITHUB_ACTIONS=true`: running as a workflow step (the CLI run in a step has the other variables too). */
  insideActions: boolean;
  /** `owner/repo` (`GITHUB_REPOSITORY`). */
  repository?: string;
  /** `GITHUB_RUN_ID`, as the runner gives it (a decimal string). */
  runId?: string;
  /** `GITHUB_RUN_ATTEMPT`; 1 when missing or not a positive integer. */
  runAttempt: number;
  /** `GITHUB_SERVER_URL`, without a trailing slash: `https://github.com`, or the GitHub Enterprise Server's. */
  serverUrl: string;
  /** `GITHUB_API_URL`: `https://api.github.com`, or the GHES `<server>/api/v3`. */
  apiUrl: string;
  sha?: string;
  ref?: string;
  /** The workflow's name (`GITHUB_WORKFLOW`). */
  workflow?: string;
  /** Where the repository is checked out (`GITHUB_WORKSPACE`). */
  workspace?: string;
  /** The step summary file (`GITHUB_STEP_SUMMARY`), when the runner provides one. */
  stepSummaryPath?: string;
  /** `GITHUB_TOKEN`, when the workflow put it in the environment. A secret: mask it before any use, never log it. */
  token?: string;
  /** This run's page; undefined unless both the repository and the run id are known. */
  runUrl?: string;
}

const DEFAULT_SERVER = 'https://github.com';
const DEFAULT_API = 'https://api.github.com';

/** The one place a run's URL is built: `<server>/<owner>/<repo>/actions/runs/<id>`. */
export function runUrlOf(serverUrl: string, repository: string, runId: string): string {
  return `${serverUrl.replace(/\/+$/, '')}/${repository}/actions/runs/${runId}`;
}

/** An empty variable is an absent one (the runner never sets these empty; a shell export may). */
function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v ? v : undefined;
}

export function runContext(env: NodeJS.ProcessEnv = process.env): RunContext {
  const repository = value(env, 'GITHUB_REPOSITORY');
  const runId = value(env, 'GITHUB_RUN_ID');
  const serverUrl = (value(env, 'GITHUB_SERVER_URL') ?? DEFAULT_SERVER).replace(/\/+$/, '');
  const attempt = Number(value(env, 'GITHUB_RUN_ATTEMPT'));
  return {
    insideActions: env.GITHUB_ACTIONS === 'true',
    repository,
    runId,
    runAttempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 1,
    serverUrl,
    apiUrl: (value(env, 'GITHUB_API_URL') ?? DEFAULT_API).replace(/\/+$/, ''),
    sha: value(env, 'GITHUB_SHA'),
    ref: value(env, 'GITHUB_REF'),
    workflow: value(env, 'GITHUB_WORKFLOW'),
    workspace: value(env, 'GITHUB_WORKSPACE'),
    stepSummaryPath: value(env, 'GITHUB_STEP_SUMMARY'),
    token: value(env, 'GITHUB_TOKEN'),
    runUrl: repository && runId ? runUrlOf(serverUrl, repository, runId) : undefined,
  };
}
