/**
 * Neon's Snapshots API (beta): manual snapshots at a point in time, restores from a snapshot (to a new branch, or
 * onto a branch in two steps: restore, inspect, finalize) and the branch's backup schedule. Branch "snapshots" (a
 * child branch at a point in time) are in neon-snapshot.ts.
 */
import { Cancellation } from '../lib/cancel.js';
import { isFault, isUserError, replyOf, UserError } from '../lib/errors.js';
import { compactUtc } from '../lib/keys.js';
import type { Logger } from '../lib/log.js';
import { isoSeconds, type Branch, type NeonApi, type ScheduleItem, type Snapshot } from '../lib/neon.js';
import { diffSchedule, scheduleDiffMarkdown, type ScheduleDiff } from '../lib/neon-schedule.js';
import { checkPointInTime, consoleUrl, findBranch, type PointInTime } from './neon-snapshot.js';

/** Neon's documented per-project limit of manual snapshots (prose docs; the spec does not state it). */
const LIMIT_HINT =
  'Neon allows a limited number of manual snapshots per project (1 on the Free plan, 10 on paid plans, per its docs). Delete old ones with `prune-retention` (`target: neon-snapshots`), or let the backup schedule (`mode: schedule`) take and expire snapshots instead.';

export interface CreateSnapshotOptions extends PointInTime {
  projectId: string;
  branch?: string;
  name?: string;
  expiresAt?: Date;
}

export interface CreateSnapshotResult {
  snapshot: Snapshot;
  source: Branch;
  created: boolean;
}

interface Deps {
  neon: NeonApi;
  log: Logger;
  now?: Date;
  cancel?: Cancellation;
}

async function sourceBranch(neon: NeonApi, projectId: string, nameOrId: string | undefined): Promise<Branch> {
  const branches = await neon.branches(projectId);
  const b = nameOrId ? findBranch(branches, nameOrId) : branches.find((x) => x.default);
  if (!b)
    throw new UserError(
      `Input \`branch\`: no branch "${nameOrId ?? '(default)'}" in project ${projectId}. Branches: ${branches
        .slice(0, 10)
        .map((x) => x.name)
        .join(', ')}.`,
    );
  return b;
}

/**
 * A 4xx that is Neon's snapshot count limit. The spec's GeneralError has a `code`, but ErrorCode is a free string
 * with no values listed (and is empty in practice), so the status narrows it and Neon's own message tells it: the
 * message Neon sent (`reply.message`), never ours around it, which holds the snapshot's name.
 */
export function isLimitError(e: unknown): boolean {
  const reply = replyOf(e);
  const status = reply?.status;
  return (
    reply?.service === 'neon' &&
    status !== undefined &&
    status >= 400 &&
    status < 500 &&
    ![401, 403, 404, 423, 429].includes(status) &&
    /limit|quota|maximum|exceed/i.test(reply.message ?? '')
  );
}

/** Takes a manual snapshot of a root branch at now / `timestamp` / `lsn`; a snapshot of the same name is reused. */
export async function createNeonSnapshot(o: CreateSnapshotOptions, deps: Deps): Promise<CreateSnapshotResult> {
  const { neon, log } = deps;
  const cancel = deps.cancel ?? new Cancellation();
  const now = deps.now ?? new Date();
  const project = await neon.project(o.projectId);
  checkPointInTime(o, project.history_retention_seconds, now);
  const source = await sourceBranch(neon, o.projectId, o.branch);
  if (source.parent_id) {
    throw new UserError(
      `Input \`branch\`: "${source.name}" is not a root branch; Neon takes manual snapshots of root branches only. Snapshot the root branch it came from, or use \`method: branch\` for a point-in-time branch of "${source.name}".`,
    );
  }
  const name = o.name ?? `backup-${compactUtc(o.timestamp ?? now)}`;
  const existing = (await neon.snapshots(o.projectId)).find((s) => s.name === name);
  if (existing) {
    log.info(`Snapshot "${name}" (${existing.id}) already exists; reusing it (a re-run of the same snapshot).`);
    return { snapshot: existing, source, created: false };
  }
  const query = {
    name,
    ...(o.timestamp ? { timestamp: isoSeconds(o.timestamp) } : {}),
    ...(o.lsn ? { lsn: o.lsn } : {}),
    ...(o.expiresAt ? { expires_at: isoSeconds(o.expiresAt) } : {}),
  };
  let created: Awaited<ReturnType<NeonApi['createSnapshot']>> | undefined;
  for (let attempt = 1; !created; attempt++) {
    try {
      created = await neon.createSnapshot(o.projectId, source.id, query);
    } catch (e) {
      if (isLimitError(e)) throw new UserError(`${(e as Error).message}. ${LIMIT_HINT}`, { cause: e });
      // A POST that failed in transit may have been applied: look before asking again.
      if (!(isFault(e) && e.reply?.status === undefined) || attempt >= 3) throw e;
      const found = (await neon.snapshots(o.projectId)).find((s) => s.name === name);
      if (found) {
        log.info(`The create request failed in transit, but snapshot "${name}" exists (${found.id}): using it.`);
        created = { snapshot: found, operations: [] };
      }
    }
  }
  const id = created.snapshot.id;
  log.info(
    `Created snapshot "${name}" (${id}) of ${source.name} at ${o.timestamp?.toISOString() ?? (o.lsn ? `LSN ${o.lsn}` : 'now')}; waiting for ${created.operations.length} operation(s)`,
  );
  const undo = cancel.onCancel(`deleted Neon snapshot "${name}" (${id}), created by this run`, async () => {
    await neon.deleteSnapshot(o.projectId, id);
  });
  await neon.waitFor(o.projectId, created.operations);
  const snapshot = (await neon.snapshots(o.projectId)).find((s) => s.id === id) ?? created.snapshot;
  cancel.throwIfCancelled();
  undo.dismiss();
  return { snapshot, source, created: true };
}

/** Finds a snapshot by id, else by name (a name held by several is refused: give the id). */
export async function findSnapshot(neon: NeonApi, projectId: string, idOrName: string): Promise<Snapshot> {
  const all = await neon.snapshots(projectId);
  const byId = all.find((s) => s.id === idOrName);
  if (byId) return byId;
  const named = all.filter((s) => s.name === idOrName);
  if (named.length === 1) return named[0]!;
  if (named.length > 1)
    throw new UserError(
      `Input \`snapshot\`: ${named.length} snapshots are named "${idOrName}" (${named.map((s) => s.id).join(', ')}); give the id of the one to restore.`,
    );
  const newest = [...all].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at)).slice(0, 10);
  throw new UserError(
    `Input \`snapshot\`: no snapshot "${idOrName}" (id or name) in project ${projectId}.${newest.length ? ` Newest: ${newest.map((s) => `${s.name} (${s.id})`).join(', ')}.` : ' The project has no snapshots.'}`,
  );
}

export interface RestoreSnapshotOptions {
  projectId: string;
  snapshot: string;
  /** Restore onto this branch (name or id); absent: into a new branch only. */
  targetBranch?: string;
  finalize: boolean;
  name?: string;
  preserveUnderName?: string;
  confirm?: string;
}

export interface RestoreSnapshotResult {
  snapshot: Snapshot;
  branch: Branch;
  target?: Branch;
  finalized: boolean;
  preservedName?: string;
  consoleUrl: string;
}

function checkConfirm(confirm: string | undefined, target: Branch, what: string): void {
  if (confirm === target.name) return;
  throw new UserError(
    `Input \`confirm\`: ${what} replaces branch "${target.name}"; set \`confirm\` to exactly \`${target.name}\` to go ahead${confirm ? ` (it is "${confirm}")` : ''}.`,
  );
}

/**
 * Restores a snapshot into a new branch. With `targetBranch` the new branch is bound to that branch; with
 * `finalize` it then replaces it (two calls, restore then finalize, so the replaced branch gets our name).
 */
export async function restoreNeonSnapshot(o: RestoreSnapshotOptions, deps: Deps): Promise<RestoreSnapshotResult> {
  const { neon, log } = deps;
  const now = deps.now ?? new Date();
  const snapshot = await findSnapshot(neon, o.projectId, o.snapshot);
  const branches = await neon.branches(o.projectId);
  const target = o.targetBranch ? findBranch(branches, o.targetBranch) : undefined;
  if (o.targetBranch && !target)
    throw new UserError(`Input \`target-branch\`: no branch "${o.targetBranch}" in project ${o.projectId}.`);
  if (target && o.finalize) checkConfirm(o.confirm, target, 'a finalized restore');
  const name = o.name ?? `restore-${snapshot.name.replace(/[^A-Za-z0-9._-]+/g, '-')}-${compactUtc(now)}`.slice(0, 200);
  const existing = branches.find((b) => b.name === name);
  if (existing)
    throw new UserError(`Input \`name\`: branch "${name}" already exists (${existing.id}); choose another name.`);
  log.info(
    `Restoring snapshot "${snapshot.name}" (${snapshot.id}) into new branch "${name}"${target ? ` bound to ${target.name} (${target.id})` : ''}`,
  );
  const r = await neon.restoreSnapshot(o.projectId, snapshot.id, {
    name,
    ...(target ? { target_branch_id: target.id } : {}),
    finalize_restore: false,
  });
  await neon.waitFor(o.projectId, r.operations);
  let preservedName: string | undefined;
  if (target && o.finalize) {
    preservedName = await finalize(neon, o.projectId, r.branch.id, target, o.preserveUnderName, now, log);
  }
  const branch = await neon.branch(o.projectId, r.branch.id);
  return {
    snapshot,
    branch,
    target,
    finalized: Boolean(target && o.finalize),
    preservedName,
    consoleUrl: consoleUrl(o.projectId, branch.id),
  };
}

async function finalize(
  neon: NeonApi,
  projectId: string,
  restoredId: string,
  target: Branch,
  preserveUnderName: string | undefined,
  now: Date,
  log: Logger,
): Promise<string> {
  const preserved = preserveUnderName ?? `${target.name}-before-restore-${compactUtc(now)}`;
  log.info(`Finalizing: the restored branch takes the name ${target.name}; the replaced one is kept as "${preserved}"`);
  await neon.waitFor(projectId, await neon.finalizeRestore(projectId, restoredId, preserved));
  return preserved;
}

export interface FinalizeOptions {
  projectId: string;
  /** The branch restore-snapshot created (name or id). */
  branch: string;
  /** The branch it replaces (name or id); absent: the snapshot's source branch, Neon's default target. */
  targetBranch?: string;
  preserveUnderName?: string;
  confirm?: string;
}

/** Finishes a restore left for inspection: the restored branch replaces its target. */
export async function finalizeNeonRestore(o: FinalizeOptions, deps: Deps): Promise<RestoreSnapshotResult> {
  const { neon, log } = deps;
  const now = deps.now ?? new Date();
  const branches = await neon.branches(o.projectId);
  const restored = findBranch(branches, o.branch);
  if (!restored) throw new UserError(`Input \`branch\`: no branch "${o.branch}" in project ${o.projectId}.`);
  const r = restored as Branch & { restored_from?: string; restore_status?: string };
  if (!r.restored_from)
    throw new UserError(
      `Input \`branch\`: "${restored.name}" was not restored from a snapshot; \`mode: finalize-restore\` finishes a \`restore-snapshot\` run with \`finalize: false\`. Give that branch's name or id.`,
    );
  if (r.restore_status && r.restore_status !== 'restored')
    throw new UserError(`Input \`branch\`: the restore of "${restored.name}" is already ${r.restore_status}.`);
  // A snapshot deleted since the restore is no reason to stop (the target can be given); a failing API is.
  const snapshot = await findSnapshot(neon, o.projectId, r.restored_from).catch((e: unknown) => {
    if (isUserError(e)) return undefined;
    throw e;
  });
  const targetRef = o.targetBranch ?? snapshot?.source_branch_id;
  const target = targetRef ? findBranch(branches, targetRef) : undefined;
  if (!target)
    throw new UserError(
      `Input \`target-branch\`: cannot tell which branch "${restored.name}" replaces${targetRef ? ` (no branch "${targetRef}")` : ' (its snapshot is gone)'}; give \`target-branch\` as given to \`restore-snapshot\`.`,
    );
  checkConfirm(o.confirm, target, 'finalizing the restore');
  const preservedName = await finalize(neon, o.projectId, restored.id, target, o.preserveUnderName, now, log);
  const branch = await neon.branch(o.projectId, restored.id);
  return {
    snapshot: snapshot ?? { id: r.restored_from, name: r.restored_from, created_at: '' },
    branch,
    target,
    finalized: true,
    preservedName,
    consoleUrl: consoleUrl(o.projectId, branch.id),
  };
}

export interface ScheduleOptions {
  projectId: string;
  branch?: string;
  wanted: ScheduleItem[];
  dryRun: boolean;
}

export interface ScheduleResult {
  branch: Branch;
  current: ScheduleItem[];
  wanted: ScheduleItem[];
  diff: ScheduleDiff;
  applied: boolean;
}

/** Declares the branch's backup schedule: reads the current one, diffs, and replaces it unless a dry run. */
export async function applyNeonSchedule(o: ScheduleOptions, deps: Deps): Promise<ScheduleResult> {
  const { neon, log } = deps;
  const branch = await sourceBranch(neon, o.projectId, o.branch);
  const current = await neon.schedule(o.projectId, branch.id);
  const diff = diffSchedule(current, o.wanted);
  if (!diff.changed) {
    log.info(`The backup schedule of ${branch.name} is already as declared (${o.wanted.length} entr(ies)).`);
    return { branch, current, wanted: o.wanted, diff, applied: false };
  }
  if (o.dryRun) {
    log.info(
      `Dry run: the schedule of ${branch.name} would change (${diff.added.length} added, ${diff.removed.length} removed); nothing was changed.`,
    );
    return { branch, current, wanted: o.wanted, diff, applied: false };
  }
  await neon.setSchedule(o.projectId, branch.id, o.wanted);
  log.info(
    `Backup schedule of ${branch.name} set: ${diff.added.length} added, ${diff.removed.length} removed${o.wanted.length ? '' : ' (scheduled snapshots are off)'}.`,
  );
  return { branch, current, wanted: o.wanted, diff, applied: true };
}

function pointOf(s: Snapshot): string {
  return s.timestamp ?? (s.lsn ? `LSN ${s.lsn}` : s.created_at);
}

export function createSnapshotSummary(r: CreateSnapshotResult): string {
  const s = r.snapshot;
  return [
    `## Neon snapshot ${r.created ? 'created' : 'reused'}: \`${s.name}\``,
    '',
    '| | |',
    '|---|---|',
    `| Snapshot | \`${s.id}\` of [\`${r.source.name}\`](${consoleUrl(r.source.project_id, r.source.id)}) |`,
    `| Point in time | ${pointOf(s)}${s.lsn && s.timestamp ? ` (LSN ${s.lsn})` : ''} |`,
    `| Expires | ${s.expires_at ?? 'never'} |`,
    '',
    `Restore it with \`mode: restore-snapshot\` and \`snapshot: ${s.id}\`.`,
    '',
  ].join('\n');
}

export function restoreSnapshotSummary(
  r: RestoreSnapshotResult,
  mode: 'restore-snapshot' | 'finalize-restore',
): string {
  const lines = [
    `## Neon snapshot ${mode === 'finalize-restore' ? 'restore finalized' : 'restored'}: \`${r.branch.name}\``,
    '',
    '| | |',
    '|---|---|',
    `| Snapshot | \`${r.snapshot.name}\` (${r.snapshot.id})${r.snapshot.created_at ? `, point in time ${pointOf(r.snapshot)}` : ''} |`,
    `| Branch | [\`${r.branch.name}\` (${r.branch.id})](${r.consoleUrl}) |`,
  ];
  if (r.finalized && r.target) {
    lines.push(
      `| Replaced | \`${r.target.name}\` now is the restored branch; the branch it replaced is kept as \`${r.preservedName}\` (${r.target.id}) |`,
      '',
      `The computes of \`${r.target.name}\` were moved to the restored branch (they restart). When you are sure, delete \`${r.preservedName}\` in the Neon console; to go back, restore from it.`,
    );
  } else if (r.target) {
    lines.push(
      `| Replaces | \`${r.target.name}\` once finalized (not yet) |`,
      '',
      `Inspect \`${r.branch.name}\` (add a compute in the console, or branch from it). To make it replace \`${r.target.name}\`, run this action again with:`,
      '',
      '```yaml',
      'mode: finalize-restore',
      `branch: ${r.branch.id}`,
      `target-branch: ${r.target.name}`,
      `confirm: ${r.target.name}`,
      '```',
    );
  } else {
    lines.push('', `A new branch holding the snapshot's data; no other branch was changed.`);
  }
  return lines.join('\n') + '\n';
}

export function scheduleSummary(r: ScheduleResult, dryRun: boolean): string {
  const head = !r.diff.changed
    ? 'unchanged'
    : r.applied
      ? r.wanted.length
        ? 'updated'
        : 'turned off'
      : dryRun
        ? 'would change (dry run)'
        : 'not applied';
  return [
    `## Neon backup schedule of \`${r.branch.name}\`: ${head}`,
    '',
    scheduleDiffMarkdown(r.diff),
    '',
    'Times are UTC. Neon takes scheduled snapshots on the hour.',
    '',
  ].join('\n');
}
