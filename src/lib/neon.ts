import { createNeonClient, isNeonError, raw, type Branch, type Operation, type Project } from '@neon/sdk';
import { FaultError, replyOf, UserError } from './errors.js';
import type { Logger } from './log.js';
import { parseRetryAfter, withRetry } from './retry.js';

/** `2026-11-21T02:00:00Z`: RFC 3339 to the second, as Neon's API asks for. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type { Branch, Operation, Project };

/** A snapshot as the Snapshots API (beta) describes it; only id, name and created_at are always present. */
export interface Snapshot {
  id: string;
  name: string;
  created_at: string;
  lsn?: string;
  timestamp?: string;
  source_branch_id?: string;
  expires_at?: string;
  /** false for snapshots the project's backup schedule took. */
  manual?: boolean;
  full_size?: number;
  diff_size?: number;
}

/** One entry of a branch's backup schedule (BackupScheduleItem in the spec). */
export interface ScheduleItem {
  frequency: string;
  hour?: number;
  day?: number;
  month?: number;
  retention_seconds?: number;
}

export interface NeonOptions {
  apiKey: string;
  apiHost: string;
  /** Bound on waiting for operations and on retrying, in seconds. */
  timeoutSeconds: number;
  pollIntervalMs?: number;
  retryBaseMs?: number;
}

/**
 * Poll interval and first retry delay: 1 s and 0.5 s against Neon. PBA_NEON_POLL_MS / PBA_NEON_RETRY_BASE_MS shorten
 * them for tests against a local Neon server, where waiting a second per poll is waste.
 */
function timing(o: NeonOptions): { pollMs: number; retryBaseMs: number } {
  return {
    pollMs: o.pollIntervalMs ?? (Number(process.env.PBA_NEON_POLL_MS) || 1000),
    retryBaseMs: o.retryBaseMs ?? (Number(process.env.PBA_NEON_RETRY_BASE_MS) || 500),
  };
}

type Call = 'idempotent' | 'not-idempotent';

/** Statuses the Neon API answers before doing anything: always safe to retry, POST included. */
const ALWAYS_SAFE = new Set([423, 429, 503]);

/**
 * The Neon API adapter the core receives: @neon/sdk's generated calls, with our one retry policy (423, 429 with
 * Retry-After, 5xx and network errors on idempotent calls; exponential backoff with jitter; bounded by the
 * timeout), operation polling, and errors that say what to fix.
 */
export class NeonApi {
  private readonly client;
  private readonly deadlineMs: number;
  private readonly timing: { pollMs: number; retryBaseMs: number };

  constructor(
    private readonly o: NeonOptions,
    private readonly log: Logger,
  ) {
    // Retries are ours (one policy for every call); the SDK's are off so the two do not multiply.
    this.client = createNeonClient({
      apiKey: o.apiKey,
      baseUrl: o.apiHost.replace(/\/+$/, ''),
      retries: 0,
      waitForReadiness: false,
      throwOnError: true,
      requestTimeoutMs: 60_000,
    }).client;
    this.deadlineMs = o.timeoutSeconds * 1000;
    this.timing = timing(o);
  }

  private async call<T>(what: string, kind: Call, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.deadlineMs;
    try {
      return await withRetry(fn, {
        attempts: 8,
        baseDelayMs: this.timing.retryBaseMs,
        maxDelayMs: 15_000,
        deadline,
        classify: (e) => {
          if (!isNeonError(e)) return { retry: false };
          const status = 'status' in e ? (e as { status: number }).status : undefined;
          const response = 'response' in e ? (e as { response?: Response }).response : undefined;
          const retryAfterMs = parseRetryAfter(response?.headers.get('retry-after'));
          if (status !== undefined && ALWAYS_SAFE.has(status)) return { retry: true, retryAfterMs };
          if (
            kind === 'idempotent' &&
            (e.kind === 'network' || e.kind === 'timeout' || (status !== undefined && status >= 500))
          )
            return { retry: true, retryAfterMs };
          return { retry: false };
        },
        onRetry: (e, attempt, delay) =>
          this.log.info(
            `Neon API: ${what} failed (${(e as Error).message}); retry ${attempt} in ${(delay / 1000).toFixed(1)} s`,
          ),
      });
    } catch (e) {
      throw this.translate(e, what);
    }
  }

  private translate(e: unknown, what: string): Error {
    if (!isNeonError(e)) return e instanceof Error ? e : new Error(String(e));
    const status = 'status' in e ? (e as { status: number }).status : undefined;
    // An HTTP reply (NeonApiError, which has a body) keeps Neon's own message apart from the one composed below.
    const reply = { service: 'neon' as const, status, code: e.kind, ...('body' in e ? { message: e.message } : {}) };
    if (e.kind === 'auth') {
      return new UserError(
        `Neon API refused ${what} (${status}): check that \`neon-api-key\` is a valid API key with access to the project (Neon console > Account settings > API keys).`,
        { cause: e, reply },
      );
    }
    if (e.kind === 'not_found')
      return new UserError(`Neon API: ${what}: not found (404). Check \`neon-project-id\` and the branch name.`, {
        cause: e,
        reply,
      });
    if (e.kind === 'network' || e.kind === 'timeout')
      return new FaultError(
        `Cannot reach the Neon API at ${this.o.apiHost} for ${what}: ${e.message}. Check \`neon-api-host\` and the network; re-running is safe.`,
        { cause: e, reply },
      );
    if (status === 423)
      return new FaultError(
        `Neon API: ${what} was refused (423): another operation is still running on the project. Retried until \`timeout\` ran out; re-running is safe (or raise \`timeout\`).`,
        { cause: e, reply },
      );
    const body = 'body' in e ? JSON.stringify((e as { body: unknown }).body) : '';
    const message = `Neon API: ${what} failed${status ? ` (${status})` : ''}: ${e.message}${body && body !== '{}' ? ` ${body}` : ''}`;
    if (status !== undefined && (status >= 500 || status === 429))
      return new FaultError(`${message}. The Neon API failed after every retry; re-running is safe.`, {
        cause: e,
        reply,
      });
    return new UserError(message, { cause: e, reply });
  }

  async project(projectId: string): Promise<Project> {
    const r = await this.call(`reading project ${projectId}`, 'idempotent', () =>
      raw.getProject({ client: this.client, path: { project_id: projectId }, throwOnError: true }),
    );
    return r.project;
  }

  /** Every branch with its annotations, following the cursor. */
  async branches(projectId: string): Promise<(Branch & { annotations?: Record<string, string> })[]> {
    const out: (Branch & { annotations?: Record<string, string> })[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const r = await this.call(`listing branches of ${projectId}`, 'idempotent', () =>
        raw.listProjectBranches({
          client: this.client,
          path: { project_id: projectId },
          query: { limit: 100, ...(cursor ? { cursor } : {}) },
          throwOnError: true,
        }),
      );
      const annotations = (r as { annotations?: Record<string, { value: Record<string, string> }> }).annotations ?? {};
      for (const b of r.branches) out.push({ ...b, annotations: annotations[b.id]?.value });
      const next = (r as { pagination?: { next?: string } }).pagination?.next;
      if (!next || r.branches.length === 0 || next === cursor) return out;
      cursor = next;
    }
    return out;
  }

  async branch(projectId: string, branchId: string): Promise<Branch> {
    const r = await this.call(`reading branch ${branchId}`, 'idempotent', () =>
      raw.getProjectBranch({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        throwOnError: true,
      }),
    );
    return r.branch;
  }

  async createBranch(
    projectId: string,
    body: {
      branch: Record<string, unknown>;
      endpoints?: { type: 'read_write' | 'read_only' }[];
      annotation_value?: Record<string, string>;
    },
  ): Promise<{ branch: Branch; operations: Operation[]; endpoints: { id: string; host: string }[] }> {
    const r = await this.call(`creating branch ${String(body.branch.name)}`, 'not-idempotent', () =>
      raw.createProjectBranch({
        client: this.client,
        path: { project_id: projectId },
        body: body as never,
        throwOnError: true,
      }),
    );
    return {
      branch: r.branch,
      operations: r.operations ?? [],
      endpoints: (r.endpoints ?? []) as { id: string; host: string }[],
    };
  }

  async updateBranch(
    projectId: string,
    branchId: string,
    branch: Record<string, unknown>,
  ): Promise<{ branch: Branch; operations: Operation[] }> {
    const r = await this.call(`updating branch ${branchId}`, 'idempotent', () =>
      raw.updateProjectBranch({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        body: { branch } as never,
        throwOnError: true,
      }),
    );
    return { branch: r.branch, operations: r.operations ?? [] };
  }

  /** Deletes a branch; one that is already gone (204, 404) counts as deleted. */
  async deleteBranch(projectId: string, branchId: string): Promise<Operation[]> {
    try {
      const r = await this.call(`deleting branch ${branchId}`, 'idempotent', () =>
        raw.deleteProjectBranch({
          client: this.client,
          path: { project_id: projectId, branch_id: branchId },
          throwOnError: true,
        }),
      );
      return (r as { operations?: Operation[] } | undefined)?.operations ?? [];
    } catch (e) {
      if (replyOf(e)?.status === 404) return [];
      throw e;
    }
  }

  async restoreBranch(
    projectId: string,
    branchId: string,
    body: { source_branch_id: string; source_lsn?: string; source_timestamp?: string; preserve_under_name?: string },
  ) {
    const r = await this.call(`restoring branch ${branchId}`, 'not-idempotent', () =>
      raw.restoreProjectBranch({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        body,
        throwOnError: true,
      }),
    );
    return { branch: r.branch, operations: r.operations ?? [] };
  }

  async connectionUri(projectId: string, branchId: string, database: string, role: string): Promise<string> {
    const r = await this.call(`getting the connection URI of ${branchId}`, 'idempotent', () =>
      raw.getConnectionUri({
        client: this.client,
        path: { project_id: projectId },
        query: { branch_id: branchId, database_name: database, role_name: role, pooled: false },
        throwOnError: true,
      }),
    );
    return r.uri;
  }

  async createSnapshot(
    projectId: string,
    branchId: string,
    query: { name: string; lsn?: string; timestamp?: string; expires_at?: string },
  ): Promise<{ snapshot: Snapshot; operations: Operation[] }> {
    const r = await this.call(`creating snapshot ${query.name}`, 'not-idempotent', () =>
      raw.createSnapshot({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        query,
        throwOnError: true,
      }),
    );
    return { snapshot: r.snapshot as Snapshot, operations: r.operations ?? [] };
  }

  async snapshots(projectId: string): Promise<Snapshot[]> {
    const r = await this.call(`listing snapshots of ${projectId}`, 'idempotent', () =>
      raw.listSnapshots({ client: this.client, path: { project_id: projectId }, throwOnError: true }),
    );
    return r.snapshots as Snapshot[];
  }

  /** Deletes a snapshot; one that is already gone (404) counts as deleted. */
  async deleteSnapshot(projectId: string, snapshotId: string): Promise<Operation[]> {
    try {
      const r = await this.call(`deleting snapshot ${snapshotId}`, 'idempotent', () =>
        raw.deleteSnapshot({
          client: this.client,
          path: { project_id: projectId, snapshot_id: snapshotId },
          throwOnError: true,
        }),
      );
      return (r as { operations?: Operation[] } | undefined)?.operations ?? [];
    } catch (e) {
      if (replyOf(e)?.status === 404) return [];
      throw e;
    }
  }

  async restoreSnapshot(
    projectId: string,
    snapshotId: string,
    body: { name: string; target_branch_id?: string; finalize_restore: boolean },
  ): Promise<{ branch: Branch; operations: Operation[] }> {
    const r = await this.call(`restoring snapshot ${snapshotId}`, 'not-idempotent', () =>
      raw.restoreSnapshot({
        client: this.client,
        path: { project_id: projectId, snapshot_id: snapshotId },
        body,
        throwOnError: true,
      }),
    );
    return { branch: r.branch, operations: r.operations ?? [] };
  }

  async finalizeRestore(projectId: string, branchId: string, replacedName: string): Promise<Operation[]> {
    const r = await this.call(`finalizing the restore of ${branchId}`, 'not-idempotent', () =>
      raw.finalizeRestoreBranch({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        body: { name: replacedName },
        throwOnError: true,
      }),
    );
    return r.operations ?? [];
  }

  async schedule(projectId: string, branchId: string): Promise<ScheduleItem[]> {
    const r = await this.call(`reading the backup schedule of ${branchId}`, 'idempotent', () =>
      raw.getSnapshotSchedule({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        throwOnError: true,
      }),
    );
    return (r.schedule ?? []) as ScheduleItem[];
  }

  /** PUT replaces the whole schedule, so repeating it is harmless: idempotent. */
  async setSchedule(projectId: string, branchId: string, schedule: ScheduleItem[]): Promise<void> {
    await this.call(`setting the backup schedule of ${branchId}`, 'idempotent', () =>
      raw.setSnapshotSchedule({
        client: this.client,
        path: { project_id: projectId, branch_id: branchId },
        body: { schedule },
        throwOnError: true,
      }),
    );
  }

  /** Polls every operation until it finishes; a failed one fails with its own error; bounded by the timeout. */
  async waitFor(projectId: string, operations: Operation[]): Promise<void> {
    const deadline = Date.now() + this.deadlineMs;
    const pending = new Map(
      operations.filter((op) => op.status !== 'finished' && op.status !== 'skipped').map((op) => [op.id, op]),
    );
    while (pending.size) {
      for (const op of [...pending.values()]) {
        const r = await this.call(`reading operation ${op.id}`, 'idempotent', () =>
          raw.getProjectOperation({
            client: this.client,
            path: { project_id: projectId, operation_id: op.id },
            throwOnError: true,
          }),
        );
        const status = r.operation.status;
        if (status === 'finished' || status === 'skipped') pending.delete(op.id);
        else if (status === 'failed' || status === 'error' || status === 'cancelled') {
          throw new UserError(
            `Neon operation ${op.action} (${op.id}) ${status}: ${r.operation.error ?? 'no error message'}.`,
          );
        }
      }
      if (!pending.size) return;
      if (Date.now() > deadline) {
        throw new UserError(
          `Neon operations still running after ${this.o.timeoutSeconds} s (\`timeout\`): ${[...pending.values()].map((op) => `${op.action} ${op.id}`).join(', ')}. They may still finish; raise \`timeout\` or check the Neon console.`,
        );
      }
      await new Promise((r) => setTimeout(r, this.timing.pollMs));
    }
  }
}
