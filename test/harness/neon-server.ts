import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { lsnValue } from '../../src/lib/wal-lsn.js';
import type { TestPostgres } from './postgres.js';

/**
 * A Neon API v2 test server for the endpoints the suite uses, with response shapes from the official OpenAPI spec
 * (checked in a test). Faults can be injected per route. Branches may be backed by real databases on the
 * harness's Postgres (CREATE DATABASE ... TEMPLATE), so that a snapshot's connection URL really connects.
 */
export interface Fault {
  method: string;
  path: RegExp;
  status?: number;
  retryAfter?: string;
  /** Destroy the connection without an answer (after applying the request when `afterApply`). */
  drop?: boolean;
  afterApply?: boolean;
  times: number;
}

export interface RecordedResponse {
  method: string;
  template: string;
  status: number;
  body: unknown;
}

interface BranchState {
  id: string;
  name: string;
  parent_id?: string;
  parent_lsn?: string;
  parent_timestamp?: string;
  default: boolean;
  protected: boolean;
  expires_at?: string;
  created_at: string;
  annotation?: Record<string, string>;
  database?: string;
}

/**
 * A kept point of a branch's history: a copy of its database as it was at `lsn` / `at`. Branches created at an
 * LSN or a timestamp start from the newest kept point at or before it (the test keeps points where it needs
 * history, e.g. right after a backup), so that a branch at a past point really holds the data of that point.
 */
export interface HistoryPoint {
  branchId: string;
  lsn: string;
  at: string;
  database: string;
}

const PROJECT = 'test-project-123';
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
let seq = 0;
const newId = (p: string) => `${p}-test-${(++seq).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export class NeonTestServer {
  readonly apiKey = 'neon-test-key-' + Math.random().toString(36).slice(2);
  readonly projectId = PROJECT;
  readonly branches = new Map<string, BranchState>();
  readonly operations = new Map<string, { op: Record<string, unknown>; pollsLeft: number; fail: boolean }>();
  readonly responses: RecordedResponse[] = [];
  readonly requests: { method: string; path: string; body: unknown }[] = [];
  faults: Fault[] = [];
  /** Operations stay running for this many reads. */
  operationPolls = 0;
  failOperations = false;
  historySeconds = 7 * 86400;
  readonly history: HistoryPoint[] = [];
  private server?: http.Server;
  url = '';

  constructor(private readonly pg?: TestPostgres) {}

  async start(mainDatabase?: string): Promise<void> {
    const main: BranchState = {
      id: 'br-main-0001',
      name: 'main',
      default: true,
      protected: false,
      created_at: now(),
      database: mainDatabase,
    };
    this.branches.set(main.id, main);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api/v2`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /**
   * Keeps a copy of a branch's database as the state at `lsn` (default: the server's current WAL position) and
   * now. The caller makes sure nothing was written between that LSN and this call.
   */
  async keepPoint(lsn?: string, branchId = 'br-main-0001'): Promise<HistoryPoint> {
    const b = this.branches.get(branchId)!;
    if (!this.pg || !b.database) throw new Error('keepPoint needs a branch backed by a database');
    const at = lsn ?? (await this.pg.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
    const point: HistoryPoint = {
      branchId,
      lsn: at,
      at: new Date().toISOString(),
      database: `neon_point_${this.history.length}_${Math.random().toString(36).slice(2, 8)}`,
    };
    await this.pg.query(`CREATE DATABASE "${point.database}" TEMPLATE "${b.database}"`);
    this.history.push(point);
    return point;
  }

  /** The database a new branch of `parent` at this point starts from: the newest kept point at or before it. */
  private databaseAt(parent: BranchState, lsn?: string, timestamp?: string): string | undefined {
    const points = this.history.filter((p) => p.branchId === parent.id);
    if (!points.length || (!lsn && !timestamp)) return parent.database;
    const before = points.filter((p) =>
      lsn ? lsnValue(p.lsn) <= lsnValue(lsn) : Date.parse(p.at) <= Date.parse(timestamp!),
    );
    if (!before.length)
      throw new Error(`the test server keeps no history of ${parent.name} at or before ${lsn ?? timestamp}`);
    return before.sort((a, b) => lsnValue(a.lsn) - lsnValue(b.lsn)).at(-1)!.database;
  }

  inject(f: Fault): void {
    this.faults.push(f);
  }

  private branchJson(b: BranchState) {
    return {
      id: b.id,
      project_id: PROJECT,
      ...(b.parent_id
        ? {
            parent_id: b.parent_id,
            parent_lsn: b.parent_lsn ?? '0/1F2A3B8',
            parent_timestamp: b.parent_timestamp ?? b.created_at,
          }
        : {}),
      name: b.name,
      current_state: 'ready',
      state_changed_at: b.created_at,
      logical_size: 30_000_000,
      creation_source: 'console',
      primary: b.default,
      default: b.default,
      protected: b.protected,
      cpu_used_sec: 0,
      compute_time_seconds: 0,
      active_time_seconds: 0,
      written_data_bytes: 0,
      data_transfer_bytes: 0,
      created_at: b.created_at,
      updated_at: b.created_at,
      ...(b.expires_at ? { expires_at: b.expires_at } : {}),
    };
  }

  private operation(action: string, branchId: string) {
    const op = {
      id: randomUUID(),
      project_id: PROJECT,
      branch_id: branchId,
      action,
      status: this.operationPolls > 0 || this.failOperations ? 'running' : 'finished',
      failures_count: 0,
      created_at: now(),
      updated_at: now(),
      total_duration_ms: 0,
    };
    this.operations.set(op.id, { op, pollsLeft: this.operationPolls, fail: this.failOperations });
    return op;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const body = text ? JSON.parse(text) : undefined;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/^\/api\/v2/, '');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname + url.search, body });

    const fault = this.faults.find((f) => f.times > 0 && f.method === method && f.path.test(path));
    if (fault) fault.times--;
    if (fault?.drop && !fault.afterApply) {
      req.socket.destroy();
      return;
    }
    const send = (status: number, template: string, payload?: unknown, headers: Record<string, string> = {}) => {
      if (fault?.drop && fault.afterApply) {
        req.socket.destroy();
        return;
      }
      this.responses.push({ method, template, status, body: payload });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(payload === undefined ? '' : JSON.stringify(payload));
    };
    const error = (status: number, template: string, message: string, headers: Record<string, string> = {}) =>
      send(status, template, { request_id: randomUUID(), code: '', message }, headers);

    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return error(401, 'default', 'authentication required');
    if (fault?.status)
      return error(
        fault.status,
        'default',
        `injected ${fault.status}`,
        fault.retryAfter ? { 'retry-after': fault.retryAfter } : {},
      );

    let m: RegExpExecArray | null;
    try {
      if ((m = /^\/projects\/([^/]+)$/.exec(path)) && method === 'GET') {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        return send(200, '/projects/{project_id} get 200', { project: this.projectJson() });
      }
      if ((m = /^\/projects\/([^/]+)\/branches$/.exec(path))) {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        if (method === 'GET') return this.listBranches(url, send);
        if (method === 'POST') return await this.createBranch(body, send, error);
      }
      if ((m = /^\/projects\/([^/]+)\/branches\/([^/]+)$/.exec(path))) {
        const b = this.branches.get(m[2]!);
        if (method === 'DELETE') {
          if (!b) return send(204, '/projects/{project_id}/branches/{branch_id} delete 204');
          if ([...this.branches.values()].some((c) => c.parent_id === b.id))
            return error(422, 'default', 'branch has children');
          this.branches.delete(b.id);
          if (b.database && this.pg) await this.pg.query(`DROP DATABASE IF EXISTS "${b.database}" WITH (FORCE)`);
          return send(200, '/projects/{project_id}/branches/{branch_id} delete 200', {
            branch: this.branchJson(b),
            operations: [this.operation('delete_timeline', b.id)],
          });
        }
        if (!b) return error(404, 'default', 'branch not found');
        if (method === 'GET')
          return send(200, '/projects/{project_id}/branches/{branch_id} get 200', {
            branch: this.branchJson(b),
            annotation: { object: { type: 'console/branch', id: b.id }, value: b.annotation ?? {} },
          });
        if (method === 'PATCH') {
          Object.assign(b, body.branch);
          return send(200, '/projects/{project_id}/branches/{branch_id} patch 200', {
            branch: this.branchJson(b),
            operations: [],
          });
        }
      }
      if ((m = /^\/projects\/([^/]+)\/branches\/([^/]+)\/restore$/.exec(path)) && method === 'POST')
        return await this.restore(m[2]!, body, send, error);
      if ((m = /^\/projects\/([^/]+)\/operations\/([^/]+)$/.exec(path)) && method === 'GET') {
        const o = this.operations.get(m[2]!);
        if (!o) return error(404, 'default', 'operation not found');
        if (o.pollsLeft > 0) o.pollsLeft--;
        else o.op.status = o.fail ? 'failed' : 'finished';
        if (o.op.status === 'failed') o.op.error = 'simulated timeline failure';
        return send(200, '/projects/{project_id}/operations/{operation_id} get 200', { operation: o.op });
      }
      if (/^\/projects\/([^/]+)\/connection_uri$/.test(path) && method === 'GET') {
        const b = this.branches.get(url.searchParams.get('branch_id') ?? '');
        if (!b) return error(404, 'default', 'branch not found');
        const uri =
          this.pg && b.database
            ? this.pg.url(b.database)
            : `postgresql://neondb_owner:npg_secret@ep-test.example/${url.searchParams.get('database_name')}`;
        return send(200, '/projects/{project_id}/connection_uri get 200', { uri });
      }
      return error(404, 'default', `no route ${method} ${path}`);
    } catch (e) {
      return error(500, 'default', (e as Error).message);
    }
  }

  private projectJson() {
    return {
      id: PROJECT,
      platform_id: 'aws',
      region_id: 'aws-us-east-2',
      name: 'test',
      pg_version: 17,
      proxy_host: 'us-east-2.aws.neon.tech',
      branch_logical_size_limit: 0,
      branch_logical_size_limit_bytes: 0,
      store_passwords: true,
      cpu_used_sec: 0,
      provisioner: 'k8s-neonvm',
      creation_source: 'console',
      history_retention_seconds: this.historySeconds,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: now(),
      owner_id: 'owner-1',
      consumption_period_start: '2026-11-01T00:00:00Z',
      consumption_period_end: '2026-12-01T00:00:00Z',
      active_time_seconds: 0,
      compute_time_seconds: 0,
      written_data_bytes: 0,
      data_transfer_bytes: 0,
      data_storage_bytes_hour: 0,
    };
  }

  private listBranches(url: URL, send: (s: number, t: string, p?: unknown) => void) {
    const all = [...this.branches.values()].sort((a, b) => a.id.localeCompare(b.id));
    const limit = Number(url.searchParams.get('limit') ?? 10000);
    const cursor = url.searchParams.get('cursor');
    const start = cursor ? all.findIndex((b) => b.id === cursor) + 1 : 0;
    const page = all.slice(start, start + limit);
    const next = start + limit < all.length ? page[page.length - 1]!.id : undefined;
    send(200, '/projects/{project_id}/branches get 200', {
      branches: page.map((b) => this.branchJson(b)),
      annotations: Object.fromEntries(
        page
          .filter((b) => b.annotation)
          .map((b) => [b.id, { object: { type: 'console/branch', id: b.id }, value: b.annotation }]),
      ),
      pagination: next
        ? { next, sort_by: 'updated_at', sort_order: 'desc' }
        : { sort_by: 'updated_at', sort_order: 'desc' },
    });
  }

  private async createBranch(
    body: {
      branch?: Record<string, string>;
      endpoints?: { type: string }[];
      annotation_value?: Record<string, string>;
    },
    send: (s: number, t: string, p?: unknown) => void,
    error: (s: number, t: string, m: string) => void,
  ) {
    const spec = body?.branch ?? {};
    if (spec.parent_lsn && spec.parent_timestamp)
      return error(400, 'default', 'parent_lsn and parent_timestamp are mutually exclusive');
    const parent = this.branches.get(spec.parent_id ?? '') ?? [...this.branches.values()].find((b) => b.default)!;
    if (spec.parent_timestamp && Date.parse(spec.parent_timestamp) < Date.now() - this.historySeconds * 1000) {
      return error(400, 'default', 'timestamp is outside of the history retention period');
    }
    const b: BranchState = {
      id: newId('br'),
      name: spec.name ?? newId('branch'),
      parent_id: parent.id,
      parent_lsn: spec.parent_lsn ?? '0/1F2A3B8',
      parent_timestamp: spec.parent_timestamp ?? now(),
      default: false,
      protected: false,
      created_at: now(),
      expires_at: spec.expires_at,
      annotation: body.annotation_value,
    };
    if (this.pg && parent.database) {
      let from: string | undefined;
      try {
        from = this.databaseAt(parent, spec.parent_lsn, spec.parent_timestamp);
      } catch (e) {
        return error(400, 'default', (e as Error).message);
      }
      b.database = `neon_${b.id.replace(/-/g, '_')}`;
      await this.pg.query(`CREATE DATABASE "${b.database}" TEMPLATE "${from}"`);
    }
    this.branches.set(b.id, b);
    const ops = [this.operation('create_timeline', b.id)];
    const endpoints = (body.endpoints ?? []).map(() => {
      ops.push(this.operation('start_compute', b.id));
      return {
        host: 'ep-test.us-east-2.aws.neon.tech',
        id: newId('ep'),
        project_id: PROJECT,
        branch_id: b.id,
        region_id: 'aws-us-east-2',
        autoscaling_limit_max_cu: 1,
        autoscaling_limit_min_cu: 0.25,
        type: 'read_write',
        current_state: 'init',
        pooler_enabled: false,
        pooler_mode: 'transaction',
        disabled: false,
        passwordless_access: true,
        creation_source: 'console',
        created_at: now(),
        updated_at: now(),
        settings: {},
        proxy_host: 'us-east-2.aws.neon.tech',
        suspend_timeout_seconds: 0,
        provisioner: 'k8s-neonvm',
      };
    });
    send(201, '/projects/{project_id}/branches post 201', {
      branch: this.branchJson(b),
      endpoints,
      operations: ops,
      roles: [{ branch_id: b.id, name: 'neondb_owner', created_at: now(), updated_at: now() }],
      databases: [
        { id: 1, branch_id: b.id, name: 'neondb', owner_name: 'neondb_owner', created_at: now(), updated_at: now() },
      ],
    });
  }

  private async restore(
    branchId: string,
    body: { source_branch_id: string; source_timestamp?: string; source_lsn?: string; preserve_under_name?: string },
    send: (s: number, t: string, p?: unknown) => void,
    error: (s: number, t: string, m: string) => void,
  ) {
    const b = this.branches.get(branchId);
    const source = this.branches.get(body?.source_branch_id);
    if (!b || !source) return error(404, 'default', 'branch not found');
    if (source.id === b.id && !body.source_timestamp && !body.source_lsn)
      return error(400, 'default', 'source_timestamp or source_lsn is required');
    if (source.id === b.id && b.parent_id)
      return error(400, 'default', 'restoring a branch to its own history is only supported for root branches');
    const ops = [];
    if (body.preserve_under_name) {
      const preserved: BranchState = {
        id: newId('br'),
        name: body.preserve_under_name,
        parent_id: b.parent_id,
        default: false,
        protected: false,
        created_at: now(),
        database: b.database,
      };
      this.branches.set(preserved.id, preserved);
      if (this.pg && b.database) {
        const copy = `neon_${preserved.id.replace(/-/g, '_')}`;
        await this.pg.query(`CREATE DATABASE "${copy}" TEMPLATE "${b.database}"`);
        preserved.database = copy;
      }
    }
    if (this.pg && b.database && source.database && source.id !== b.id) {
      await this.pg.query(`DROP DATABASE "${b.database}" WITH (FORCE)`);
      await this.pg.query(`CREATE DATABASE "${b.database}" TEMPLATE "${source.database}"`);
    }
    b.parent_timestamp = body.source_timestamp ?? now();
    b.parent_lsn = body.source_lsn ?? '0/2B3C4D5';
    ops.push(this.operation('create_timeline', b.id));
    send(200, '/projects/{project_id}/branches/{branch_id}/restore post 200', {
      branch: this.branchJson(b),
      operations: ops,
    });
  }
}
