import { isReported } from '../lib/errors.js';
import { formatSeconds, type Logger } from '../lib/log.js';
import type { FailedJob, GitHubApi, IssueRef } from '../lib/github.js';
import type { Notifier } from '../lib/slack.js';

export interface RunInfo {
  id: number;
  attempt: number;
  url: string;
  workflow: string;
}

export interface ReportOptions {
  status: 'success' | 'failure' | 'cancelled';
  onCancelled: 'ignore' | 'failure';
  key: string;
  title: string;
  labels: string[];
  assignees: string[];
  extraBody?: string;
  details?: Record<string, unknown>;
  runbookUrl?: string;
  database?: string;
  run: RunInfo;
}

export interface ReportResult {
  action: 'created' | 'commented' | 'closed' | 'none';
  issue?: { number: number; url: string };
}

interface StreamState {
  key: string;
  since: string;
  failures: number;
}

const MARKER = 'postgres-backup-actions:failure';

/**
 * The state as JSON inside an HTML comment. `<`, `>` and `-` are written as \u escapes (still JSON, read back
 * unchanged), so no key can end the comment or the marker early: any string round-trips.
 */
export function stateMarker(s: StreamState): string {
  const json = JSON.stringify(s).replace(/[<>-]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `<!-- ${MARKER} ${json} -->`;
}

/** The stream state hidden in an issue body, or undefined when the body is not one of ours. */
export function readState(body: string): StreamState | undefined {
  const m = new RegExp(`<!-- ${MARKER} (\\{.*?\\}) -->`).exec(body);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as StreamState;
  } catch {
    return undefined;
  }
}

function replaceState(body: string, s: StreamState): string {
  return body.replace(new RegExp(`<!-- ${MARKER} \\{.*?\\} -->`), stateMarker(s));
}

function detailsTable(details?: Record<string, unknown>): string {
  if (!details || Object.keys(details).length === 0) return '';
  const cell = (v: unknown) =>
    (typeof v === 'string' ? v : JSON.stringify(v)).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return ['| | |', '|---|---|', ...Object.entries(details).map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`), ''].join(
    '\n',
  );
}

function jobsText(jobs: FailedJob[] | undefined): string {
  if (jobs === undefined) return '_(failed jobs unavailable: the token lacks `actions: read`)_';
  if (jobs.length === 0) return '_(no failed job reported for this attempt)_';
  return jobs
    .map((j) => `- [${j.name}](${j.url})${j.steps.length ? `: step ${j.steps.map((s) => `**${s}**`).join(', ')}` : ''}`)
    .join('\n');
}

function since(state: StreamState, now: Date): string {
  return formatSeconds((now.getTime() - Date.parse(state.since)) / 1000);
}

export async function reportStatus(
  o: ReportOptions,
  deps: { gh: GitHubApi; log: Logger; notifier?: Notifier; now?: Date },
): Promise<ReportResult> {
  const { gh, log } = deps;
  const now = deps.now ?? new Date();
  const status = o.status === 'cancelled' && o.onCancelled === 'failure' ? 'failure' : o.status;
  if (status === 'cancelled') {
    log.info('The run was cancelled; nothing to report (set `on-cancelled: failure` to report cancellations).');
    return { action: 'none' };
  }
  const label = o.labels[0]!;
  const mine = (issues: IssueRef[]) =>
    issues.filter((i) => readState(i.body)?.key === o.key).sort((a, b) => a.number - b.number);
  const open = mine(await gh.openIssues(label));

  if (status === 'success') {
    const issue = open[0];
    if (!issue) {
      log.info(`No open failure issue for "${o.key}": nothing to do.`);
      return { action: 'none' };
    }
    const state = readState(issue.body)!;
    await gh.comment(
      issue.number,
      `✅ **Recovered** in [run ${o.run.id}](${o.run.url}) after ${state.failures} failed run(s) over ${since(state, now)}. Closing.`,
    );
    await gh.updateIssue(issue.number, { state: 'closed', state_reason: 'completed' });
    for (const dup of open.slice(1)) await gh.updateIssue(dup.number, { state: 'closed', state_reason: 'completed' });
    await deps.notifier?.notify(`✅ Recovered: ${o.key}, after ${state.failures} failed run(s) — ${issue.url}`);
    log.info(`Closed #${issue.number}: "${o.key}" recovered after ${state.failures} failed run(s).`);
    return { action: 'closed', issue: { number: issue.number, url: issue.url } };
  }

  let jobs: FailedJob[] | undefined;
  try {
    jobs = await gh.failedJobs(o.run.id, o.run.attempt);
  } catch (e) {
    if (!isReported(e)) throw e;
    log.warn(`${e.message.split('\n')[0]} The issue will not list the failed jobs.`);
  }
  const runLine = `[${o.run.workflow} run ${o.run.id}](${o.run.url})${o.run.attempt > 1 ? ` (attempt ${o.run.attempt})` : ''}`;
  const existing = open[0];
  if (existing) return repeat(existing, open.slice(1));

  await gh.ensureLabels(o.labels);
  const state: StreamState = { key: o.key, since: now.toISOString(), failures: 1 };
  const body = [
    `## ❌ ${o.title}`,
    '',
    `**What failed:** ${runLine}${o.database ? `, database \`${o.database}\`` : ''}.`,
    '',
    jobsText(jobs),
    '',
    `**Since:** ${now.toISOString()} (1 failed run).`,
    '',
    detailsTable(o.details),
    o.extraBody ?? '',
    '### What to do',
    '',
    `1. Open the [failed run](${o.run.url}) and read the failing step's last lines: the error names the input or resource at fault and how to fix it.`,
    '2. Usual causes: expired or rotated credentials (database password, AWS role, Neon API key), the database unreachable from the runner, a `pg_dump` older than the server (the error names the client to install), a full or missing bucket.',
    '3. Until a backup succeeds, the newest good backup is the last complete one: check its age with `postgres-backup list`.',
    o.runbookUrl ? `4. Follow the [runbook](${o.runbookUrl}).` : '4. Follow your recovery runbook if data is at risk.',
    '',
    'This issue is updated on every failed run and closed automatically by the next successful run.',
    '',
    stateMarker(state),
  ].join('\n');
  const created = await gh.createIssue(o.title, body, o.labels, o.assignees);
  log.info(`Opened #${created.number} for "${o.key}".`);
  // Two failing runs at once may both have created an issue: keep the oldest, close the others.
  const after = mine(await gh.openIssues(label));
  const oldest = after[0];
  if (oldest && oldest.number !== created.number) {
    await gh.comment(
      created.number,
      `Duplicate of #${oldest.number} (another run reported the same failure at the same time).`,
    );
    await gh.updateIssue(created.number, { state: 'closed', state_reason: 'not_planned' });
    log.info(
      `#${oldest.number} was opened for the same stream at the same time; closed #${created.number} as its duplicate.`,
    );
    return repeat(oldest, []);
  }
  await deps.notifier?.notify(`❌ Backup failing: ${o.key} — ${created.url}`);
  return { action: 'created', issue: { number: created.number, url: created.url } };

  async function repeat(issue: IssueRef, duplicates: IssueRef[]): Promise<ReportResult> {
    const prev = readState(issue.body)!;
    const state: StreamState = { ...prev, failures: prev.failures + 1 };
    await gh.comment(
      issue.number,
      [
        `❌ **Failed again** in ${runLine}.`,
        '',
        jobsText(jobs),
        '',
        `Failing for ${since(state, now)}: ${state.failures} failed runs since ${state.since}.`,
        '',
        detailsTable(o.details),
        o.extraBody ?? '',
      ].join('\n'),
    );
    await gh.updateIssue(issue.number, { body: replaceState(issue.body, state) });
    for (const dup of duplicates) {
      await gh.comment(dup.number, `Duplicate of #${issue.number}.`);
      await gh.updateIssue(dup.number, { state: 'closed', state_reason: 'not_planned' });
    }
    log.info(`Commented on #${issue.number}: "${o.key}" has failed ${state.failures} times since ${state.since}.`);
    return { action: 'commented', issue: { number: issue.number, url: issue.url } };
  }
}
