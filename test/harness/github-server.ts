import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A GitHub REST test server for the endpoints open-failure-issue uses, with response shapes from GitHub's OpenAPI
 * description (checked in a test), Link-header pagination, 403 injection, a concurrent-run race, and a Slack
 * webhook endpoint that records what it receives.
 */
export interface Issue {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  state_reason: string | null;
  labels: string[];
  assignees: string[];
  comments: string[];
  created_at: string;
  pull_request?: boolean;
}

export interface RecordedResponse {
  method: string;
  template: string;
  status: number;
  body: unknown;
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class GitHubTestServer {
  readonly token = 'ghs_test' + Math.random().toString(36).slice(2);
  readonly owner = 'octo-org';
  readonly repo = 'app';
  issues: Issue[] = [];
  labels = new Set<string>(['bug']);
  jobs: { name: string; conclusion: string; steps: { name: string; conclusion: string }[] }[] = [];
  forbidden: RegExp[] = [];
  /** Answers injected before routing: `times` requests matching `match` ("METHOD /path") get `status`. */
  faults: { match: RegExp; status: number; times: number; headers?: Record<string, string> }[] = [];
  /** Every API request, as "METHOD /path", in order. */
  readonly requests: string[] = [];
  /** On the next issue creation, another run creates its issue (with the same body) just before ours. */
  raceOnCreate = false;
  slack: unknown[] = [];
  readonly responses: RecordedResponse[] = [];
  url = '';
  private server?: http.Server;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private user() {
    const u = 'https://api.github.com/users/github-actions%5Bbot%5D';
    return {
      login: 'github-actions[bot]',
      id: 41898282,
      node_id: 'MDM6Qm90NDE4OTgyODI=',
      avatar_url: 'https://avatars.githubusercontent.com/in/15368?v=4',
      gravatar_id: '',
      url: u,
      html_url: 'https://github.com/apps/github-actions',
      followers_url: `${u}/followers`,
      following_url: `${u}/following{/other_user}`,
      gists_url: `${u}/gists{/gist_id}`,
      starred_url: `${u}/starred{/owner}{/repo}`,
      subscriptions_url: `${u}/subscriptions`,
      organizations_url: `${u}/orgs`,
      repos_url: `${u}/repos`,
      events_url: `${u}/events{/privacy}`,
      received_events_url: `${u}/received_events`,
      type: 'Bot',
      site_admin: false,
    };
  }

  private labelJson(name: string) {
    return {
      id: 1000 + name.length,
      node_id: 'LA_test',
      url: `${this.api}/labels/${encodeURIComponent(name)}`,
      name,
      description: null,
      color: 'd73a4a',
      default: false,
    };
  }

  private get api() {
    return `https://api.github.com/repos/${this.owner}/${this.repo}`;
  }

  issueJson(i: Issue) {
    return {
      id: 5000 + i.number,
      node_id: `I_test${i.number}`,
      url: `${this.api}/issues/${i.number}`,
      repository_url: this.api,
      labels_url: `${this.api}/issues/${i.number}/labels{/name}`,
      comments_url: `${this.api}/issues/${i.number}/comments`,
      events_url: `${this.api}/issues/${i.number}/events`,
      html_url: `https://github.com/${this.owner}/${this.repo}/issues/${i.number}`,
      number: i.number,
      state: i.state,
      state_reason: i.state_reason,
      title: i.title,
      body: i.body,
      user: this.user(),
      labels: i.labels.map((l) => this.labelJson(l)),
      assignee: null,
      assignees: [],
      milestone: null,
      locked: false,
      active_lock_reason: null,
      comments: i.comments.length,
      closed_at: i.state === 'closed' ? now() : null,
      created_at: i.created_at,
      updated_at: now(),
      author_association: 'NONE',
      ...(i.pull_request
        ? { pull_request: { url: `${this.api}/pulls/${i.number}`, html_url: null, diff_url: null, patch_url: null } }
        : {}),
    };
  }

  addIssue(fields: Partial<Issue> & { title: string; body: string }): Issue {
    const i: Issue = {
      number: this.issues.length + 1,
      state: 'open',
      state_reason: null,
      labels: [],
      assignees: [],
      comments: [],
      created_at: now(),
      ...fields,
    };
    this.issues.push(i);
    return i;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const body = text ? JSON.parse(text) : undefined;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const send = (status: number, template: string, payload?: unknown, headers: Record<string, string> = {}) => {
      this.responses.push({ method, template, status, body: payload });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    if (path === '/slack/hook' && method === 'POST') {
      this.slack.push(body);
      res.writeHead(200);
      res.end('ok');
      return;
    }
    if (req.headers.authorization !== `token ${this.token}` && req.headers.authorization !== `Bearer ${this.token}`) {
      return send(401, 'error', { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    }
    this.requests.push(`${method} ${path}`);
    const fault = this.faults.find((f) => f.times > 0 && f.match.test(`${method} ${path}`));
    if (fault) {
      fault.times--;
      return send(
        fault.status,
        'error',
        {
          message: fault.status === 403 ? 'You have exceeded a secondary rate limit.' : 'Server Error',
          documentation_url: 'https://docs.github.com/rest',
        },
        fault.headers,
      );
    }
    if (this.forbidden.some((re) => re.test(`${method} ${path}`))) {
      return send(403, 'error', {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/rest',
      });
    }
    const repo = `/repos/${this.owner}/${this.repo}`;
    let m: RegExpExecArray | null;
    if (path === `${repo}/issues` && method === 'GET') {
      const label = url.searchParams.get('labels');
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const page = Number(url.searchParams.get('page') ?? 1);
      const all = this.issues
        .filter((i) => i.state === 'open' && (!label || i.labels.includes(label)))
        .sort((a, b) => b.number - a.number);
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const headers: Record<string, string> = {};
      if (page * perPage < all.length) {
        const next = new URL(url.toString());
        next.searchParams.set('page', String(page + 1));
        headers.link = `<${this.url}${next.pathname}${next.search}>; rel="next"`;
      }
      return send(
        200,
        '/repos/{owner}/{repo}/issues get',
        slice.map((i) => this.issueJson(i)),
        headers,
      );
    }
    if (path === `${repo}/issues` && method === 'POST') {
      if (this.raceOnCreate) {
        this.raceOnCreate = false;
        this.addIssue({ title: body.title, body: body.body, labels: body.labels ?? [] });
      }
      const i = this.addIssue({
        title: body.title,
        body: body.body,
        labels: body.labels ?? [],
        assignees: body.assignees ?? [],
      });
      for (const l of i.labels) this.labels.add(l);
      return send(201, '/repos/{owner}/{repo}/issues post', this.issueJson(i));
    }
    if ((m = new RegExp(`^${repo}/issues/(\\d+)/comments$`).exec(path)) && method === 'POST') {
      const i = this.issues[Number(m[1]) - 1];
      if (!i) return send(404, 'error', { message: 'Not Found' });
      i.comments.push(body.body);
      return send(201, '/repos/{owner}/{repo}/issues/{issue_number}/comments post', {
        id: 9000 + i.comments.length,
        node_id: 'IC_test',
        url: `${this.api}/issues/comments/${9000 + i.comments.length}`,
        body: body.body,
        html_url: `https://github.com/${this.owner}/${this.repo}/issues/${i.number}#issuecomment-1`,
        issue_url: `${this.api}/issues/${i.number}`,
        user: this.user(),
        created_at: now(),
        updated_at: now(),
        author_association: 'NONE',
      });
    }
    if ((m = new RegExp(`^${repo}/issues/(\\d+)$`).exec(path)) && method === 'PATCH') {
      const i = this.issues[Number(m[1]) - 1];
      if (!i) return send(404, 'error', { message: 'Not Found' });
      if (body.body !== undefined) i.body = body.body;
      if (body.state) i.state = body.state;
      if (body.state_reason) i.state_reason = body.state_reason;
      return send(200, '/repos/{owner}/{repo}/issues/{issue_number} patch', this.issueJson(i));
    }
    if ((m = new RegExp(`^${repo}/labels/(.+)$`).exec(path)) && method === 'GET') {
      const name = decodeURIComponent(m[1]!);
      if (!this.labels.has(name))
        return send(404, '/repos/{owner}/{repo}/labels/{name} get', {
          message: 'Not Found',
          documentation_url: 'https://docs.github.com/rest',
        });
      return send(200, '/repos/{owner}/{repo}/labels/{name} get', this.labelJson(name));
    }
    if (path === `${repo}/labels` && method === 'POST') {
      this.labels.add(body.name);
      return send(201, '/repos/{owner}/{repo}/labels post', this.labelJson(body.name));
    }
    if ((m = new RegExp(`^${repo}/actions/runs/(\\d+)/attempts/(\\d+)/jobs$`).exec(path)) && method === 'GET') {
      const runId = Number(m[1]);
      return send(200, '/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs get', {
        total_count: this.jobs.length,
        jobs: this.jobs.map((j, k) => ({
          id: 700 + k,
          node_id: 'CR_test',
          run_id: runId,
          run_url: `${this.api}/actions/runs/${runId}`,
          run_attempt: Number(m![2]),
          head_sha: '0123456789abcdef0123456789abcdef01234567',
          workflow_name: 'Nightly backup',
          head_branch: 'main',
          name: j.name,
          url: `${this.api}/actions/jobs/${700 + k}`,
          html_url: `https://github.com/${this.owner}/${this.repo}/actions/runs/${runId}/job/${700 + k}`,
          status: 'completed',
          conclusion: j.conclusion,
          started_at: now(),
          completed_at: now(),
          created_at: now(),
          check_run_url: `${this.api}/check-runs/${700 + k}`,
          labels: ['ubuntu-24.04'],
          runner_id: 1,
          runner_name: 'GitHub Actions 1',
          runner_group_id: 1,
          runner_group_name: 'GitHub Actions',
          steps: j.steps.map((s, n) => ({
            name: s.name,
            status: 'completed',
            conclusion: s.conclusion,
            number: n + 1,
            started_at: now(),
            completed_at: now(),
          })),
        })),
      });
    }
    return send(404, 'error', { message: `no route ${method} ${path}` });
  }
}
