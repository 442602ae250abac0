import { Cancellation } from '../lib/cancel.js';
import { isFault, UserError } from '../lib/errors.js';
import { compactUtc } from '../lib/keys.js';
import { formatSeconds, type Logger } from '../lib/log.js';
import { githubContext } from '../lib/manifest.js';
import { isoSeconds, type Branch, type NeonApi } from '../lib/neon.js';
import type { RunContext } from '../lib/run-context.js';

export const MAX_EXPIRY_SECONDS = 30 * 86400;

export interface PointInTime {
  timestamp?: Date;
  lsn?: string;
}

export interface SnapshotOptions extends PointInTime {
  projectId: string;
  branch?: string;
  name?: string;
  expiresAt?: Date;
  createEndpoint: boolean;
  database?: string;
  role?: string;
}

export interface SnapshotResult {
  branch: Branch;
  created: boolean;
  databaseUrl?: string;
  consoleUrl: string;
}

export interface RestoreOptions extends PointInTime {
  projectId: string;
  branch: string;
  sourceBranch?: string;
  preserveUnderName?: string;
  confirm?: string;
}

export interface RestoreResult {
  branch: Branch;
  preserved?: Branch;
  consoleUrl: string;
}

export function consoleUrl(projectId: string, branchId: string): string {
  return `https://console.neon.tech/app/projects/${projectId}/branches/${branchId}`;
}

export function findBranch(branches: Branch[], nameOrId: string): Branch | undefined {
  return branches.find((b) => b.id === nameOrId) ?? branches.find((b) => b.name === nameOrId);
}

/** Checks a timestamp against now and the project's history window, before the API is asked. */
export function checkPointInTime(p: PointInTime, historySeconds: number, now: Date, input = 'timestamp'): void {
  if (!p.timestamp) return;
  if (p.timestamp.getTime() > now.getTime()) {
    throw new UserError(
      `Input \`${input}\`: ${p.timestamp.toISOString()} is in the future (now is ${now.toISOString()}). Give a past time, or leave it empty for now.`,
    );
  }
  const oldest = new Date(now.getTime() - historySeconds * 1000);
  if (p.timestamp < oldest) {
    throw new UserError(
      `Input \`${input}\`: ${p.timestamp.toISOString()} is outside the project's history window of ${formatSeconds(historySeconds)} (oldest restorable point: ${oldest.toISOString()}). Choose a later time, or restore from an S3 backup instead.`,
    );
  }
}

function annotations(run: RunContext): Record<string, string> {
  const gh = githubContext(run);
  return {
    'created-by': 'postgres-backup-actions',
    ...(gh
      ? {
          'github-repository': gh.repository,
          'github-run-id': gh.runId,
          'github-sha': gh.sha,
          'github-run-url': gh.runUrl,
        }
      : {}),
  };
}

export async function neonSnapshot(
  o: SnapshotOptions,
  deps: { neon: NeonApi; log: Logger; now?: Date; cancel?: Cancellation; run: RunContext },
): Promise<SnapshotResult> {
  const { neon, log } = deps;
  const cancel = deps.cancel ?? new Cancellation();
  const now = deps.now ?? new Date();
  const project = await neon.project(o.projectId);
  checkPointInTime(o, project.history_retention_seconds, now);
  let branches = await neon.branches(o.projectId);
  const source = o.branch ? findBranch(branches, o.branch) : branches.find((b) => b.default);
  if (!source) {
    throw new UserError(
      `Input \`branch\`: no branch "${o.branch ?? '(default)'}" in project ${o.projectId}. Branches: ${branches
        .slice(0, 10)
        .map((b) => b.name)
        .join(', ')}.`,
    );
  }
  const name = o.name ?? `backup-${compactUtc(o.timestamp ?? now)}`;
  const existing = branches.find((b) => b.name === name);
  if (existing) {
    log.info(`Branch "${name}" (${existing.id}) already exists; reusing it (a re-run of the same snapshot).`);
    return {
      branch: existing,
      created: false,
      databaseUrl: await endpointUrl(existing),
      consoleUrl: consoleUrl(o.projectId, existing.id),
    };
  }
  const body = {
    branch: {
      name,
      parent_id: source.id,
      ...(o.timestamp ? { parent_timestamp: isoSeconds(o.timestamp) } : {}),
      ...(o.lsn ? { parent_lsn: o.lsn } : {}),
      ...(o.expiresAt ? { expires_at: isoSeconds(o.expiresAt) } : {}),
    },
    endpoints: o.createEndpoint ? [{ type: 'read_write' as const }] : [],
    annotation_value: annotations(deps.run),
  };
  let created: Awaited<ReturnType<NeonApi['createBranch']>> | undefined;
  for (let attempt = 1; !created; attempt++) {
    try {
      created = await neon.createBranch(o.projectId, body);
    } catch (e) {
      // A POST that failed in transit may have been applied: look before asking again.
      if (!(isFault(e) && e.reply?.status === undefined) || attempt >= 3) throw e;
      branches = await neon.branches(o.projectId);
      const made = branches.find((b) => b.name === name);
      if (made) {
        log.info(`The create request failed in transit, but branch "${name}" exists (${made.id}): using it.`);
        created = { branch: made, operations: [], endpoints: [] };
      }
    }
  }
  log.info(
    `Created branch "${name}" (${created.branch.id}) from ${source.name} at ${o.timestamp?.toISOString() ?? o.lsn ?? 'now'}; waiting for ${created.operations.length} operation(s)`,
  );
  // A snapshot this run created but never reported is half-done work: a cancel deletes it.
  const madeId = created.branch.id;
  const undo = cancel.onCancel(`deleted Neon branch "${name}" (${madeId}), created by this run`, async () => {
    await neon.deleteBranch(o.projectId, madeId);
  });
  await neon.waitFor(o.projectId, created.operations);
  const branch = await neon.branch(o.projectId, created.branch.id);
  const databaseUrl = await endpointUrl(branch);
  cancel.throwIfCancelled();
  undo.dismiss();
  return {
    branch,
    created: true,
    databaseUrl,
    consoleUrl: consoleUrl(o.projectId, branch.id),
  };

  async function endpointUrl(b: Branch): Promise<string | undefined> {
    if (!o.createEndpoint) return undefined;
    return neon.connectionUri(o.projectId, b.id, o.database!, o.role!);
  }
}

export async function neonRestore(
  o: RestoreOptions,
  deps: { neon: NeonApi; log: Logger; now?: Date },
): Promise<RestoreResult> {
  const { neon, log } = deps;
  const now = deps.now ?? new Date();
  const branches = await neon.branches(o.projectId);
  const target = findBranch(branches, o.branch);
  if (!target) throw new UserError(`Input \`branch\`: no branch "${o.branch}" in project ${o.projectId}.`);
  if (o.confirm !== target.name) {
    throw new UserError(
      `Input \`confirm\`: an in-place restore rewrites branch "${target.name}"; set \`confirm\` to exactly \`${target.name}\` to go ahead${o.confirm ? ` (it is "${o.confirm}")` : ''}.`,
    );
  }
  const source = o.sourceBranch ? findBranch(branches, o.sourceBranch) : target;
  if (!source) throw new UserError(`Input \`source-branch\`: no branch "${o.sourceBranch}" in project ${o.projectId}.`);
  const own = source.id === target.id;
  if (own && !o.timestamp && !o.lsn) {
    throw new UserError(
      'Input `timestamp`: restoring a branch to its own history needs `timestamp` or `lsn` (the point to go back to).',
    );
  }
  if (own && target.parent_id) {
    const parent = branches.find((b) => b.id === target.parent_id);
    throw new UserError(
      `Input \`branch\`: "${target.name}" is not a root branch (its parent is ${parent?.name ?? target.parent_id}); Neon restores a branch to its own history only on root branches. Restore it from its parent instead (\`source-branch: ${parent?.name ?? target.parent_id}\`), or take a snapshot at that time and use it.`,
    );
  }
  const project = await neon.project(o.projectId);
  checkPointInTime(o, project.history_retention_seconds, now);
  const preserve = o.preserveUnderName ?? `${target.name}-before-restore-${compactUtc(now)}`;
  log.info(
    `Restoring branch ${target.name} (${target.id}) from ${source.name} at ${o.timestamp?.toISOString() ?? o.lsn ?? 'head'}; its current state is kept as "${preserve}"`,
  );
  const r = await neon.restoreBranch(o.projectId, target.id, {
    source_branch_id: source.id,
    ...(o.timestamp ? { source_timestamp: isoSeconds(o.timestamp) } : {}),
    ...(o.lsn ? { source_lsn: o.lsn } : {}),
    preserve_under_name: preserve,
  });
  await neon.waitFor(o.projectId, r.operations);
  const after = await neon.branches(o.projectId);
  return {
    branch: findBranch(after, target.id) ?? r.branch,
    preserved: after.find((b) => b.name === preserve),
    consoleUrl: consoleUrl(o.projectId, target.id),
  };
}

export function snapshotSummary(r: SnapshotResult, pit: PointInTime): string {
  return [
    `## Neon snapshot ${r.created ? 'created' : 'reused'}: \`${r.branch.name}\``,
    '',
    '| | |',
    '|---|---|',
    `| Branch | [\`${r.branch.name}\` (${r.branch.id})](${r.consoleUrl}) |`,
    `| Point in time | ${pit.timestamp?.toISOString() ?? (pit.lsn ? `LSN ${pit.lsn}` : 'now')} (parent LSN ${r.branch.parent_lsn ?? '?'}) |`,
    `| Expires | ${r.branch.expires_at ?? 'never'} |`,
    '',
  ].join('\n');
}

export function restoreSummary(r: RestoreResult, pit: PointInTime): string {
  return [
    `## Neon branch restored: \`${r.branch.name}\``,
    '',
    `Restored to ${pit.timestamp?.toISOString() ?? (pit.lsn ? `LSN ${pit.lsn}` : 'the source head')}. The state before the restore is kept as ${r.preserved ? `[\`${r.preserved.name}\` (${r.preserved.id})](${consoleUrl(r.branch.project_id, r.preserved.id)})` : 'a preserved branch'}.`,
    '',
    `[Open the branch in the Neon console](${r.consoleUrl})`,
    '',
  ].join('\n');
}
