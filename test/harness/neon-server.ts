import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BackupScheduleItem } from '../../src/lib/neon-schedule.js';
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
  /** Set on branches restoreSnapshot created: the snapshot, and the branch a finalize replaces. */
  restored_from?: string;
  restored_as?: string;
  restore_status?: 'restored' | 'finalized';
  restore_target?: string;
}

/** A snapshot of the Snapshots API (beta), backed by a real copy of its branch's database when there is one. */
export interface SnapshotState {
  id: string;
  name: string;
  created_at: string;
  lsn: string;
  timestamp: string;
  source_branch_id: string;
  expires_at?: string;
  /** true for snapshots taken through the API, false for those the backup schedule took. */
  manual: boolean;
  full_size?: number;
  diff_size?: number;
  database?: string;
}

const FREQUENCIES = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

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
  readonly snapshots = new Map<string, SnapshotState>();
  /** Snapshots a project may hold (manual and scheduled together); createSnapshot answers 422 beyond it. */
  snapshotLimit = 10;
  /** Backup schedules by branch id; a branch without one answers `{ schedule: [] }`. */
  readonly schedules = new Map<string, BackupScheduleItem[]>();
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
    return this.pointAt(parent, lsn, timestamp)?.database ?? parent.database;
  }

  /** The newest kept point of `parent` at or before `lsn` / `timestamp`; none when neither is given or none is kept. */
  private pointAt(parent: BranchState, lsn?: string, timestamp?: string): HistoryPoint | undefined {
    const points = this.history.filter((p) => p.branchId === parent.id);
    if (!points.length || (!lsn && !timestamp)) return undefined;
    const before = points.filter((p) =>
      lsn ? lsnValue(p.lsn) <= lsnValue(lsn) : Date.parse(p.at) <= Date.parse(timestamp!),
    );
    if (!before.length)
      throw new Error(`the test server keeps no history of ${parent.name} at or before ${lsn ?? timestamp}`);
    return before.sort((a, b) => lsnValue(a.lsn) - lsnValue(b.lsn)).at(-1)!;
  }

  /**
   * Adds a snapshot as the project's backup schedule would take it (`manual: false`), of `branchId` (default: the
   * default branch) now or at a kept point. Not bound by `snapshotLimit`, but counted by it.
   */
  async addScheduledSnapshot(
    opts: {
      branchId?: string;
      name?: string;
      lsn?: string;
      timestamp?: string;
      createdAt?: string;
      expiresAt?: string;
      fullSize?: number;
      diffSize?: number;
    } = {},
  ): Promise<SnapshotState> {
    const b = opts.branchId ? this.branches.get(opts.branchId) : [...this.branches.values()].find((x) => x.default);
    if (!b) throw new Error(`addScheduledSnapshot: no branch ${opts.branchId ?? '(default)'}`);
    const s = await this.takeSnapshot(b, { ...opts, manual: false });
    if (opts.createdAt) s.created_at = opts.createdAt;
    if (opts.fullSize !== undefined) s.full_size = opts.fullSize;
    if (opts.diffSize !== undefined) s.diff_size = opts.diffSize;
    return s;
  }

  /** Copies `b`'s database as it was at `lsn` / `timestamp` (or now) into a new snapshot. */
  private async takeSnapshot(
    b: BranchState,
    o: { name?: string; lsn?: string; timestamp?: string; expiresAt?: string; manual: boolean },
  ): Promise<SnapshotState> {
    const point = this.pointAt(b, o.lsn, o.timestamp);
    const timestamp = o.timestamp ?? point?.at.replace(/\.\d{3}Z$/, 'Z') ?? now();
    const lsn =
      o.lsn ??
      point?.lsn ??
      (this.pg
        ? (await this.pg.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn
        : '0/2B3C4D5');
    const s: SnapshotState = {
      id: newId('snap'),
      name: o.name ?? `${b.name} ${timestamp}`,
      created_at: now(),
      lsn,
      timestamp,
      source_branch_id: b.id,
      expires_at: o.expiresAt,
      manual: o.manual,
    };
    if (this.pg && b.database) {
      s.database = `neon_${s.id.replace(/-/g, '_')}`;
      await this.pg.query(`CREATE DATABASE "${s.database}" TEMPLATE "${point?.database ?? b.database}"`);
    }
    this.snapshots.set(s.id, s);
    return s;
  }

  private snapshotJson(s: SnapshotState) {
    return {
      id: s.id,
      name: s.name,
      lsn: s.lsn,
      timestamp: s.timestamp,
      source_branch_id: s.source_branch_id,
      created_at: s.created_at,
      ...(s.expires_at ? { expires_at: s.expires_at } : {}),
      manual: s.manual,
      ...(s.full_size !== undefined ? { full_size: s.full_size } : {}),
      ...(s.diff_size !== undefined ? { diff_size: s.diff_size } : {}),
    };
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
      ...(b.restore_status ? { restore_status: b.restore_status } : {}),
      ...(b.restored_from ? { restored_from: b.restored_from } : {}),
      ...(b.restored_as ? { restored_as: b.restored_as } : {}),
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
      if ((m = /^\/projects\/([^/]+)\/branches\/([^/]+)\/snapshot$/.exec(path)) && method === 'POST') {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        return await this.createSnapshot(m[2]!, url, send, error);
      }
      if ((m = /^\/projects\/([^/]+)\/branches\/([^/]+)\/finalize_restore$/.exec(path)) && method === 'POST') {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        const b = this.branches.get(m[2]!);
        if (!b) return error(404, 'default', 'branch not found');
        const r = this.finalizeRestore(b, body?.name);
        if (typeof r === 'string') return error(r.startsWith('target') ? 404 : 400, 'default', r);
        return send(200, '/projects/{project_id}/branches/{branch_id}/finalize_restore post 200', { operations: r });
      }
      if ((m = /^\/projects\/([^/]+)\/branches\/([^/]+)\/backup_schedule$/.exec(path))) {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        const b = this.branches.get(m[2]!);
        if (!b && (method === 'GET' || method === 'PUT')) return error(404, 'default', 'branch not found');
        if (method === 'GET')
          return send(200, '/projects/{project_id}/branches/{branch_id}/backup_schedule get 200', {
            schedule: this.schedules.get(b!.id) ?? [],
          });
        if (method === 'PUT') {
          const problem = scheduleProblem(body);
          if (problem) return error(400, 'default', problem);
          this.schedules.set(
            b!.id,
            (body as { schedule: BackupScheduleItem[] }).schedule.map((x) => ({ ...x })),
          );
          return send(200, '/projects/{project_id}/branches/{branch_id}/backup_schedule put 200', {});
        }
      }
      if ((m = /^\/projects\/([^/]+)\/snapshots$/.exec(path)) && method === 'GET') {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        return send(200, '/projects/{project_id}/snapshots get 200', {
          snapshots: [...this.snapshots.values()].map((s) => this.snapshotJson(s)),
        });
      }
      if ((m = /^\/projects\/([^/]+)\/snapshots\/([^/]+)$/.exec(path))) {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        const s = this.snapshots.get(m[2]!);
        if (!s && (method === 'DELETE' || method === 'PATCH')) return error(404, 'default', 'snapshot not found');
        if (method === 'DELETE') {
          this.snapshots.delete(s!.id);
          if (s!.database && this.pg) await this.pg.query(`DROP DATABASE IF EXISTS "${s!.database}" WITH (FORCE)`);
          return send(202, '/projects/{project_id}/snapshots/{snapshot_id} delete 202', {
            operations: [this.operation('delete_timeline', s!.source_branch_id)],
          });
        }
        if (method === 'PATCH') {
          const name = (body as { snapshot?: { name?: unknown } } | undefined)?.snapshot?.name;
          if (name !== undefined && (typeof name !== 'string' || !name))
            return error(400, 'default', 'snapshot.name must be a non-empty string');
          if (name) s!.name = name;
          return send(200, '/projects/{project_id}/snapshots/{snapshot_id} patch 200', {
            snapshot: this.snapshotJson(s!),
          });
        }
      }
      if ((m = /^\/projects\/([^/]+)\/snapshots\/([^/]+)\/restore$/.exec(path)) && method === 'POST') {
        if (m[1] !== PROJECT) return error(404, 'default', 'project not found');
        return await this.restoreSnapshot(m[2]!, url, body, send, error);
      }
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

  private async createSnapshot(
    branchId: string,
    url: URL,
    send: (s: number, t: string, p?: unknown) => void,
    error: (s: number, t: string, m: string) => void,
  ) {
    const b = this.branches.get(branchId);
    if (!b) return error(404, 'default', 'branch not found');
    if (b.parent_id) return error(400, 'default', 'snapshots can only be created from root branches');
    const q = (k: string) => url.searchParams.get(k) ?? undefined;
    const [lsn, timestamp, name, expiresAt] = [q('lsn'), q('timestamp'), q('name'), q('expires_at')];
    if (lsn && timestamp) return error(400, 'default', 'lsn and timestamp are mutually exclusive');
    if (timestamp && Number.isNaN(Date.parse(timestamp))) return error(400, 'default', 'timestamp is not a valid time');
    if (timestamp && Date.parse(timestamp) < Date.now() - this.historySeconds * 1000)
      return error(400, 'default', 'timestamp is outside of the history retention period');
    if (expiresAt && Number.isNaN(Date.parse(expiresAt)))
      return error(400, 'default', 'expires_at is not a valid time');
    if (this.snapshots.size >= this.snapshotLimit)
      return error(422, 'default', `snapshot limit of ${this.snapshotLimit} reached for project ${PROJECT}`);
    let s: SnapshotState;
    try {
      s = await this.takeSnapshot(b, { name, lsn, timestamp, expiresAt, manual: true });
    } catch (e) {
      return error(400, 'default', (e as Error).message);
    }
    send(200, '/projects/{project_id}/branches/{branch_id}/snapshot post 200', {
      snapshot: this.snapshotJson(s),
      operations: [this.operation('create_timeline', b.id)],
    });
  }

  private async restoreSnapshot(
    snapshotId: string,
    url: URL,
    body: { name?: string; target_branch_id?: string; finalize_restore?: boolean } | undefined,
    send: (s: number, t: string, p?: unknown) => void,
    error: (s: number, t: string, m: string) => void,
  ) {
    const s = this.snapshots.get(snapshotId);
    if (!s) return error(404, 'default', 'snapshot not found');
    const targetId = body?.target_branch_id ?? s.source_branch_id;
    if (!this.branches.has(targetId)) return error(404, 'default', `target branch ${targetId} not found`);
    const b: BranchState = {
      id: newId('br'),
      name: body?.name ?? url.searchParams.get('name') ?? `${s.name} (restored ${now()})`,
      default: false,
      protected: false,
      created_at: now(),
      restored_from: s.id,
      restore_status: 'restored',
      restore_target: targetId,
    };
    if (this.pg && s.database) {
      b.database = `neon_${b.id.replace(/-/g, '_')}`;
      await this.pg.query(`CREATE DATABASE "${b.database}" TEMPLATE "${s.database}"`);
    }
    this.branches.set(b.id, b);
    const operations = [this.operation('create_branch', b.id)];
    if (body?.finalize_restore) {
      const r = this.finalizeRestore(b);
      if (typeof r === 'string') return error(400, 'default', r);
      operations.push(...r);
    }
    send(200, '/projects/{project_id}/snapshots/{snapshot_id}/restore post 200', {
      branch: this.branchJson(b),
      operations,
    });
  }

  /**
   * Makes a branch restoreSnapshot created act as the branch it replaces: it takes that branch's name and default
   * flag (computes are found by branch id here, so connection_uri of the name now reaches the restored data), and
   * the replaced branch is renamed. Returns the operations, or why not.
   */
  private finalizeRestore(b: BranchState, oldName?: string): ReturnType<NeonTestServer['operation']>[] | string {
    if (!b.restore_target) return `branch ${b.id} was not created by restoring a snapshot`;
    if (b.restore_status !== 'restored') return `the restore of branch ${b.id} is already finalized`;
    const target = this.branches.get(b.restore_target);
    if (!target) return `target branch ${b.restore_target} not found`;
    const name = target.name;
    target.name = oldName || `${name}_old_${now()}`;
    b.name = name;
    b.default = target.default;
    target.default = false;
    b.restored_as = target.id;
    b.restore_status = 'finalized';
    return [this.operation('apply_config', b.id)];
  }
}

/** Why a setSnapshotSchedule body does not follow the spec's BackupSchedule, or undefined. */
function scheduleProblem(body: unknown): string | undefined {
  const schedule = (body as { schedule?: unknown } | undefined)?.schedule;
  if (!Array.isArray(schedule)) return 'schedule must be an array';
  const int = (v: unknown, min: number, max = Infinity) =>
    Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
  for (const [i, item] of schedule.entries()) {
    const it = item as Record<string, unknown> | null;
    if (!it || typeof it !== 'object') return `schedule[${i}] must be an object`;
    if (!FREQUENCIES.includes(it.frequency as string))
      return `schedule[${i}].frequency must be one of ${FREQUENCIES.join(', ')}`;
    if (it.hour !== undefined && !int(it.hour, 0, 23)) return `schedule[${i}].hour must be an integer from 0 to 23`;
    if (it.day !== undefined && !int(it.day, 1, 31)) return `schedule[${i}].day must be an integer from 1 to 31`;
    if (it.month !== undefined && !int(it.month, 1, 12)) return `schedule[${i}].month must be an integer from 1 to 12`;
    if (it.retention_seconds !== undefined && !int(it.retention_seconds, 3600))
      return `schedule[${i}].retention_seconds must be an integer of at least 3600`;
  }
  return undefined;
}
