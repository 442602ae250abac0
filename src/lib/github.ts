import { getOctokit } from '@actions/github';
import { FaultError, UserError } from './errors.js';

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

/** The GitHub REST adapter the core receives; 403s become errors that name the permission to add. */
export class GitHubApi {
  private readonly octokit;

  constructor(
    token: string,
    readonly owner: string,
    readonly repo: string,
    baseUrl = process.env.GITHUB_API_URL ?? 'https://api.github.com',
  ) {
    this.octokit = getOctokit(token, { baseUrl, request: { retries: 0 } });
  }

  private translate(e: unknown, what: string, permission: string): Error {
    const status = (e as { status?: number }).status;
    const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
    const reply = { service: 'github' as const, status, code };
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
    if ((status !== undefined && (status >= 500 || status === 429)) || (status === undefined && code))
      return new FaultError(
        `GitHub ${status === undefined ? 'could not be reached' : `failed (${status})`} while ${what}. This is a fault of GitHub or the network; re-running is safe.`,
        { cause: e, reply },
      );
    return e instanceof Error ? e : new Error(String(e));
  }

  /** Open issues with the label, every page (the search API lags behind, so it is not used). */
  async openIssues(label: string): Promise<IssueRef[]> {
    try {
      const issues = await this.octokit.paginate(this.octokit.rest.issues.listForRepo, {
        owner: this.owner,
        repo: this.repo,
        state: 'open',
        labels: label,
        per_page: 100,
      });
      return issues
        .filter((i) => !i.pull_request)
        .map((i) => ({ number: i.number, url: i.html_url, body: i.body ?? '', createdAt: i.created_at }));
    } catch (e) {
      throw this.translate(e, 'listing open issues', 'issues: read');
    }
  }

  async ensureLabels(labels: string[]): Promise<void> {
    for (const name of labels) {
      try {
        await this.octokit.rest.issues.getLabel({ owner: this.owner, repo: this.repo, name });
      } catch (e) {
        if ((e as { status?: number }).status !== 404)
          throw this.translate(e, `reading label ${name}`, 'issues: write');
        try {
          await this.octokit.rest.issues.createLabel({
            owner: this.owner,
            repo: this.repo,
            name,
            color: 'd73a4a',
            description: 'A backup stream is failing (postgres-backup-actions)',
          });
        } catch (e2) {
          if ((e2 as { status?: number }).status !== 422)
            throw this.translate(e2, `creating label ${name}`, 'issues: write'); // 422: created meanwhile
        }
      }
    }
  }

  async createIssue(title: string, body: string, labels: string[], assignees: string[]): Promise<IssueRef> {
    try {
      const r = await this.octokit.rest.issues.create({
        owner: this.owner,
        repo: this.repo,
        title,
        body,
        labels,
        ...(assignees.length ? { assignees } : {}),
      });
      return { number: r.data.number, url: r.data.html_url, body: r.data.body ?? '', createdAt: r.data.created_at };
    } catch (e) {
      throw this.translate(e, 'creating an issue', 'issues: write');
    }
  }

  async comment(issue: number, body: string): Promise<void> {
    try {
      await this.octokit.rest.issues.createComment({ owner: this.owner, repo: this.repo, issue_number: issue, body });
    } catch (e) {
      throw this.translate(e, `commenting on #${issue}`, 'issues: write');
    }
  }

  async updateIssue(
    issue: number,
    fields: { body?: string; state?: 'closed'; state_reason?: 'completed' | 'not_planned' },
  ): Promise<void> {
    try {
      await this.octokit.rest.issues.update({ owner: this.owner, repo: this.repo, issue_number: issue, ...fields });
    } catch (e) {
      throw this.translate(e, `updating #${issue}`, 'issues: write');
    }
  }

  /** The failed jobs and steps of one run attempt. */
  async failedJobs(runId: number, attempt: number): Promise<FailedJob[]> {
    try {
      const jobs = await this.octokit.paginate(this.octokit.rest.actions.listJobsForWorkflowRunAttempt, {
        owner: this.owner,
        repo: this.repo,
        run_id: runId,
        attempt_number: attempt,
        per_page: 100,
      });
      return jobs
        .filter((j) => j.conclusion === 'failure' || j.conclusion === 'timed_out')
        .map((j) => ({
          name: j.name,
          url: j.html_url ?? '',
          steps: (j.steps ?? []).filter((s) => s.conclusion === 'failure').map((s) => s.name),
        }));
    } catch (e) {
      throw this.translate(e, `listing the jobs of run ${runId}`, 'actions: read');
    }
  }
}
