import { getOctokit } from '@actions/github';
import { FaultError, replyOf, UserError } from './errors.js';
import { parseRetryAfter, withRetry } from './retry.js';

export interface IssueRef {
  number: number;
  url: string;
  body: string;
  createdAt: string;
}

export interface FailedJob {
  name: string;
  url: string;
  steps: string[];
}

/** Requests that can be repeated without a second effect (reads, label reads, issue edits). */
type Repeatable = 'idempotent' | 'create';

/** GitHub's answers that mean "not applied, try later": rate limits, primary and secondary. */
function rateLimited(e: unknown): { limited: boolean; retryAfterMs?: number } {
  const err = e as { status?: number; response?: { headers?: Record<string, string | undefined> } };
  const headers = err.response?.headers ?? {};
  const retryAfterMs = parseRetryAfter(headers['retry-after']);
  if (err.status === 429) return { limited: true, retryAfterMs };
  if (err.status === 403 && (retryAfterMs !== undefined || headers['x-ratelimit-remaining'] === '0')) {
    const reset = Number(headers['x-ratelimit-reset']);
    return {
      limited: true,
      retryAfterMs: retryAfterMs ?? (reset ? Math.max(0, reset * 1000 - Date.now()) : undefined),
    };
  }
  return { limited: false };
}

/**
 * The GitHub REST adapter the core receives. Every request goes through the one retry policy (`withRetry`): rate
 * limits for every request, 5xx and network errors only for requests that can be repeated (a create whose reply
 * was lost may have been applied: a duplicate issue is worse than a failed step). Errors keep the HTTP status:
 * 401/403 name the permission to add, 5xx/429/network after the retries are faults that say re-running is safe.
 */
export class GitHubApi {
  private readonly octokit;

  constructor(
    token: string,
    readonly owner: string,
    readonly repo: string,
    baseUrl: string,
    private readonly retryBaseMs = 1000,
  ) {
    this.octokit = getOctokit(token, { baseUrl });
  }

  private async call<T>(what: string, permission: string, kind: Repeatable, fn: () => Promise<T>): Promise<T> {
    let attempts = 0;
    try {
      return await withRetry(
        () => {
          attempts++;
          return fn();
        },
        {
          attempts: 5,
          baseDelayMs: this.retryBaseMs,
          maxDelayMs: 20_000,
          deadline: Date.now() + 90_000,
          classify: (e) => {
            const limit = rateLimited(e);
            if (limit.limited) return { retry: true, retryAfterMs: limit.retryAfterMs };
            if (kind !== 'idempotent') return { retry: false };
            const status = (e as { status?: number }).status;
            const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
            return { retry: status !== undefined ? status >= 500 : !!code };
          },
        },
      );
    } catch (e) {
      throw this.translate(e, what, permission, attempts);
    }
  }

  private translate(e: unknown, what: string, permission: string, attempts: number): Error {
    const status = (e as { status?: number }).status;
    const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
    const reply = { service: 'github' as const, status, code, attempts };
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    if (rateLimited(e).limited)
      return new FaultError(
        `GitHub's rate limit stopped ${what}${tries}. Re-running later is safe; a busy token shared by many workflows hits it first.`,
        { cause: e, reply },
      );
    if (status === 403 || status === 401) {
      return new UserError(
        `GitHub refused ${what} (${status}): the token needs \`${permission}\`. Add to the job:\n  permissions:\n    issues: write\n    actions: read\n(and use the default \`github-token\`, or a token with that access).`,
        { cause: e, reply },
      );
    }
    if (status === 404)
      return new UserError(`GitHub: ${what}: not found (404). Check \`repository\` (${this.owner}/${this.repo}).`, {
        cause: e,
        reply,
      });
    if ((status !== undefined && status >= 500) || (status === undefined && code))
      return new FaultError(
        `GitHub ${status === undefined ? `could not be reached (${code})` : `failed (${status})`} while ${what}${tries}. This is a fault of GitHub or the network; re-running is safe.`,
        { cause: e, reply },
      );
    return e instanceof Error ? e : new Error(String(e));
  }

  /** Open issues with the label, every page (the search API lags behind, so it is not used). */
  async openIssues(label: string): Promise<IssueRef[]> {
    const issues = await this.call('listing open issues', 'issues: read', 'idempotent', () =>
      this.octokit.paginate(this.octokit.rest.issues.listForRepo, {
        owner: this.owner,
        repo: this.repo,
        state: 'open',
        labels: label,
        per_page: 100,
      }),
    );
    return issues
      .filter((i) => !i.pull_request)
      .map((i) => ({ number: i.number, url: i.html_url, body: i.body ?? '', createdAt: i.created_at }));
  }

  async ensureLabels(labels: string[]): Promise<void> {
    for (const name of labels) {
      try {
        await this.call(`reading label ${name}`, 'issues: write', 'idempotent', () =>
          this.octokit.rest.issues.getLabel({ owner: this.owner, repo: this.repo, name }),
        );
      } catch (e) {
        if (replyOf(e)?.status !== 404) throw e;
        try {
          await this.call(`creating label ${name}`, 'issues: write', 'create', () =>
            this.octokit.rest.issues.createLabel({
              owner: this.owner,
              repo: this.repo,
              name,
              color: 'd73a4a',
              description: 'A backup stream is failing (postgres-backup-actions)',
            }),
          );
        } catch (e2) {
          if (replyOf(e2)?.status !== 422) throw e2; // 422: created meanwhile
        }
      }
    }
  }

  async createIssue(title: string, body: string, labels: string[], assignees: string[]): Promise<IssueRef> {
    const r = await this.call('creating an issue', 'issues: write', 'create', () =>
      this.octokit.rest.issues.create({
        owner: this.owner,
        repo: this.repo,
        title,
        body,
        labels,
        ...(assignees.length ? { assignees } : {}),
      }),
    );
    return { number: r.data.number, url: r.data.html_url, body: r.data.body ?? '', createdAt: r.data.created_at };
  }

  async comment(issue: number, body: string): Promise<void> {
    await this.call(`commenting on #${issue}`, 'issues: write', 'create', () =>
      this.octokit.rest.issues.createComment({ owner: this.owner, repo: this.repo, issue_number: issue, body }),
    );
  }

  async updateIssue(
    issue: number,
    fields: { body?: string; state?: 'closed'; state_reason?: 'completed' | 'not_planned' },
  ): Promise<void> {
    await this.call(`updating #${issue}`, 'issues: write', 'idempotent', () =>
      this.octokit.rest.issues.update({ owner: this.owner, repo: this.repo, issue_number: issue, ...fields }),
    );
  }

  /** The failed jobs and steps of one run attempt. */
  async failedJobs(runId: number, attempt: number): Promise<FailedJob[]> {
    const jobs = await this.call(`listing the jobs of run ${runId}`, 'actions: read', 'idempotent', () =>
      this.octokit.paginate(this.octokit.rest.actions.listJobsForWorkflowRunAttempt, {
        owner: this.owner,
        repo: this.repo,
        run_id: runId,
        attempt_number: attempt,
        per_page: 100,
      }),
    );
    return jobs
      .filter((j) => j.conclusion === 'failure' || j.conclusion === 'timed_out')
      .map((j) => ({
        name: j.name,
        url: j.html_url ?? '',
        steps: (j.steps ?? []).filter((s) => s.conclusion === 'failure').map((s) => s.name),
      }));
  }
}
