import { inputError } from '../lib/errors.js';
import { GitHubApi } from '../lib/github.js';
import type { InputReader } from '../lib/inputs.js';
import type { RunIO } from '../lib/runtime.js';
import { runUrlOf } from '../lib/run-context.js';
import { reportStatus } from '../core/failure-issue.js';
import { SlackWebhook } from '../lib/slack.js';

export async function openFailureIssue(inputs: InputReader, io: RunIO): Promise<void> {
  let token = inputs.string('github-token');
  if (!token || token === '${{ github.token }}') token = io.run.token ?? '';
  if (!token)
    throw inputError(
      'github-token',
      'is empty',
      'Pass `${{ github.token }}` (the default in a workflow) or set GITHUB_TOKEN.',
    );
  io.log.secret(token);
  const status = inputs.oneOf('status', ['success', 'failure', 'cancelled', 'skipped'] as const);
  const run = io.run;
  const repository = inputs.optional('repository') ?? run.repository ?? '';
  const [owner, repo, extra] = repository.split('/');
  if (!owner || !repo || extra !== undefined)
    throw inputError(
      'repository',
      `"${repository}" is not owner/repo`,
      'Set `repository` (e.g. `acme/app`), or run inside GitHub Actions.',
    );
  const database = inputs.optional('database');
  const workflow = run.workflow || 'backup';
  const key = inputs.optional('key') ?? (database ? `${workflow} / ${database}` : workflow);
  let details: Record<string, unknown> | undefined;
  const detailsText = inputs.optional('details');
  if (detailsText) {
    try {
      details = JSON.parse(detailsText) as Record<string, unknown>;
    } catch {
      details = undefined;
    }
    if (!details || typeof details !== 'object' || Array.isArray(details)) {
      throw inputError(
        'details',
        'is not a JSON object',
        'Pass e.g. `{"backup-id": "${{ steps.backup.outputs.backup-id }}"}`, or `${{ toJSON(steps.backup.outputs) }}`.',
      );
    }
  }
  const labels = inputs.list('labels');
  if (labels.length === 0)
    throw inputError('labels', 'is empty', 'Give at least one label: it is how the open issue is found again.');
  const slackUrl = inputs.optional('slack-webhook-url');
  if (slackUrl && !/^https?:\/\//.test(slackUrl))
    throw inputError('slack-webhook-url', 'is not an http(s) URL', 'Paste the incoming-webhook URL from Slack.');
  const runId = Number(run.runId ?? 0) || 0;
  const result = await reportStatus(
    {
      status: status === 'skipped' ? 'cancelled' : status,
      onCancelled: inputs.oneOf('on-cancelled', ['ignore', 'failure'] as const),
      key,
      title: inputs.optional('title') ?? `Backup failing: ${key}`,
      labels,
      assignees: inputs.list('assignees'),
      extraBody: inputs.optional('body'),
      details,
      runbookUrl: inputs.optional('runbook-url'),
      database,
      run: {
        id: runId,
        attempt: run.runAttempt,
        url: runUrlOf(run.serverUrl, `${owner}/${repo}`, String(runId)),
        workflow,
      },
    },
    {
      gh: new GitHubApi(token, owner, repo, run.apiUrl),
      log: io.log,
      notifier: slackUrl ? new SlackWebhook(slackUrl, io.log) : undefined,
    },
  );
  io.setOutput('action', result.action);
  io.setOutput('issue-number', result.issue?.number ?? '');
  io.setOutput('issue-url', result.issue?.url ?? '');
  await io.summary(
    `## Failure issue: ${result.action}${result.issue ? ` [#${result.issue.number}](${result.issue.url})` : ''}\n\nStream \`${key}\`, status \`${status}\`.\n`,
  );
}
