import { localFiles, type Files } from '../lib/files.js';
import { errorMessage, FaultError, isFault, replyOf, UserError } from '../lib/errors.js';
import { databasePrefix } from '../lib/keys.js';
import { formatBytes, formatSeconds, type Logger } from '../lib/log.js';
import type { Branch, NeonApi, Operation, Snapshot } from '../lib/neon.js';
import { classifyS3, type ObjectStore } from '../lib/s3.js';
import { mapLimit } from '../lib/map-limit.js';
import { listBackups, markBrokenNewest, newestVerified, readManifest, type BackupEntry } from './catalog.js';
import { deleteBackups } from './deletion.js';
import { findLockedBackups, lockNote, unreadableNote } from './retention-locks.js';
import { planRetention, type RetentionPolicy } from './retention.js';

export interface PruneSettings {
  policy: RetentionPolicy;
  timeZone: string;
  kind?: string;
  incompleteGraceSeconds: number;
  dryRun: boolean;
  /** Where the JSON plan is written. */
  planFile: string;
}

/** One row of the plan, whatever the target: an S3 backup or a Neon branch. */
export interface PlanRow {
  id: string;
  time: string;
  bytes: number;
  kind?: string;
  /** Neon: the branch name. */
  name?: string;
  reasons?: string[];
  /** Why it is deleted, for incomplete backups and stale uploads; why it is left, for locked ones. */
  note?: string;
  /** Locked: the retain-until date S3 Object Lock reports (the latest among the backup's objects). */
  lockedUntil?: string;
}

export interface PruneReport {
  target: 's3' | 'neon' | 'neon-snapshots';
  where: string;
  dryRun: boolean;
  generatedAt: string;
  policy: string;
  timeZone: string;
  keep: PlanRow[];
  remove: PlanRow[];
  /** Kept because their policy does not apply (another kind) or within the grace period. */
  untouched: PlanRow[];
  /** Planned for deletion but still protected by S3 Object Lock: left in place, "locked until <date>". */
  locked: PlanRow[];
  abortedUploads: { key: string; initiated: string }[];
  /** `kind` says whether the store failed (`fault`) or refused (`permission`), from its reply. */
  failures: { id: string; error: string; kind?: string }[];
  freedBytes: number;
}

export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    if (p[k] === -1) parts.push(`all ${k}`);
    else if (p[k] > 0) parts.push(`${p[k]} ${k}`);
  }
  if (p.within) parts.push(`all within ${p.withinText} of the newest`);
  return `keep ${parts.join(', ')}`;
}

function emptyReport(target: PruneReport['target'], where: string, o: PruneSettings, now: Date): PruneReport {
  return {
    target,
    where,
    dryRun: o.dryRun,
    generatedAt: now.toISOString(),
    policy: describePolicy(o.policy),
    timeZone: o.timeZone,
    keep: [],
    remove: [],
    untouched: [],
    locked: [],
    abortedUploads: [],
    failures: [],
    freedBytes: 0,
  };
}

export { mapLimit } from '../lib/map-limit.js';

/**
 * Everything a prune deletes is decided from a listing; when the listing fails, nothing is deleted and the error says
 * so. A fault (the store or the API down) stays a fault, so that the report says re-running is safe.
 */
async function listBeforeDeleting<T>(where: string, list: () => Promise<T>): Promise<T> {
  try {
    return await list();
  } catch (e) {
    const message = `Listing ${where} failed, so nothing was deleted: ${errorMessage(e)}`;
    throw isFault(e) ? new FaultError(message, { cause: e, reply: e.reply }) : new UserError(message, { cause: e });
  }
}

/**
 * Retention over one database's S3 backups. Deletes nothing unless the whole listing succeeded; never the newest
 * complete nor the newest verified backup; never a key outside `<prefix>/<database>/`.
 */
export async function pruneS3(
  store: ObjectStore,
  o: { prefix: string; database: string } & PruneSettings,
  deps: { log: Logger; now?: Date; files?: Files },
): Promise<PruneReport> {
  const now = deps.now ?? new Date();
  const dbPrefix = databasePrefix(o.prefix, o.database);
  const where = `s3://${store.bucket}/${dbPrefix}`;
  const { entries, uploads } = await listBeforeDeleting(where, async () => {
    const entries = await listBackups(store, o.prefix, o.database);
    await markBrokenNewest(store, entries);
    return { entries, uploads: await store.listMultipartUploads(dbPrefix) };
  });
  const complete = entries.filter((e) => e.complete);
  const kinds = new Map<string, string>();
  if (o.kind) {
    const manifests = await mapLimit(complete, 8, (e) => readManifest(store, e));
    complete.forEach((e, i) => kinds.set(e.backupId, manifests[i]!.kind));
  }
  const newestComplete = complete.at(-1);
  const verified = await newestVerified(store, complete);
  const report = emptyReport('s3', where, o, now);
  const row = (e: BackupEntry): PlanRow => ({
    id: e.backupId,
    time: e.time.toISOString(),
    bytes: e.bytes,
    ...(kinds.has(e.backupId) ? { kind: kinds.get(e.backupId) } : {}),
  });
  const inScope = complete.filter((e) => !o.kind || kinds.get(e.backupId) === o.kind);
  for (const e of complete)
    if (!inScope.includes(e))
      report.untouched.push({ ...row(e), note: `kind ${kinds.get(e.backupId)}, not ${o.kind}` });

  const plan = planRetention(
    inScope.map((e) => ({
      id: e.backupId,
      time: e.time,
      item: e,
      protect: [
        ...(e === newestComplete ? ['newest complete backup'] : []),
        ...(e === verified ? ['newest verified backup'] : []),
      ],
    })),
    o.policy,
    { timeZone: o.timeZone, now },
  );
  report.keep = plan.keep.map((k) => ({ ...row(k.item), reasons: k.reasons }));
  report.remove = plan.remove.map((r) => row(r.item));

  const graceEdge = now.getTime() - o.incompleteGraceSeconds * 1000;
  const staleIncomplete: BackupEntry[] = [];
  for (const e of entries.filter((x) => !x.complete)) {
    const last = Math.max(e.lastModified.getTime(), e.time.getTime());
    if (e.broken) {
      // Never restorable and never counted; not a backup still being written (its manifest came last).
      staleIncomplete.push(e);
      report.remove.push({ ...row(e), note: `broken: ${e.broken}` });
    } else if (last < graceEdge) {
      staleIncomplete.push(e);
      report.remove.push({
        ...row(e),
        note: `incomplete (no manifest), last written ${formatSeconds((now.getTime() - last) / 1000)} ago`,
      });
    } else
      report.untouched.push({
        ...row(e),
        note: 'incomplete (no manifest), within the grace period: may still be running',
      });
  }
  const staleUploads = uploads.filter((u) => u.initiated.getTime() < graceEdge);
  report.abortedUploads = staleUploads.map((u) => ({ key: u.key, initiated: u.initiated.toISOString() }));

  // S3 Object Lock: what the store still protects is reported and left, in a dry run too.
  const locks = await findLockedBackups(store, [...plan.remove.map((r) => r.item), ...staleIncomplete], now, deps.log);
  const left = (id: string) => locks.locked.has(id) || locks.unreadable.has(id);
  for (const r of report.remove) {
    const lock = locks.locked.get(r.id);
    const unreadable = locks.unreadable.get(r.id);
    if (lock) report.locked.push({ ...r, lockedUntil: lock.retainUntil.toISOString(), note: lockNote(lock) });
    if (unreadable) {
      report.untouched.push({ ...r, note: unreadableNote(unreadable) });
      const reply = replyOf(unreadable);
      report.failures.push({ id: r.id, error: unreadableNote(unreadable), kind: reply ? classifyS3(reply) : 'other' });
    }
  }
  report.remove = report.remove.filter((r) => !left(r.id));
  const deletable = [...plan.remove.map((r) => r.item), ...staleIncomplete].filter((e) => !left(e.backupId));
  report.freedBytes = report.remove.reduce((s, r) => s + r.bytes, 0);

  // Defence in depth: the planner's guarantees, checked again right before anything irreversible.
  const removeIds = new Set(report.remove.map((r) => r.id));
  if ((newestComplete && removeIds.has(newestComplete.backupId)) || (verified && removeIds.has(verified.backupId))) {
    throw new Error('bug: the plan deletes the newest complete or newest verified backup; nothing was deleted');
  }
  const keys = deletable.flatMap((e) => e.keys);
  if (keys.some((k) => !k.startsWith(dbPrefix)))
    throw new Error(`bug: a key outside ${dbPrefix} was planned for deletion; nothing was deleted`);

  (deps.files ?? localFiles).writeText(o.planFile, JSON.stringify(report, null, 2) + '\n');
  deps.log.info(
    `${report.policy} (${o.timeZone}): ${report.keep.length} kept, ${report.remove.length} to delete (${formatBytes(report.freedBytes)}), ${report.locked.length} locked (S3 Object Lock), ${report.untouched.length} untouched, ${staleUploads.length} stale upload(s) under ${where}`,
  );
  if (o.dryRun) {
    deps.log.info('Dry run: nothing was deleted.');
    return report;
  }
  const failed = await deleteBackups(store, dbPrefix, deletable);
  for (const f of failed) report.failures.push({ id: f.key, error: f.error, kind: f.kind });
  for (const u of staleUploads) {
    await store.abortMultipartUpload(u.key, u.uploadId).catch((e: Error) => {
      const reply = replyOf(e);
      report.failures.push({
        id: `upload ${u.uploadId} of ${u.key}`,
        error: e.message,
        kind: reply ? classifyS3(reply) : 'other',
      });
    });
  }
  (deps.files ?? localFiles).writeText(o.planFile, JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** The error for failed deletions, by what the service answered: a fault to re-run, or a permission to grant. */
export function deletionFailures(report: PruneReport, target: PruneReport['target']): Error {
  const list = report.failures
    .slice(0, 20)
    .map((f) => `- ${f.id}: ${f.error}`)
    .join('\n');
  const head = `${report.failures.length} deletion(s) failed (the rest succeeded; a backup is deleted manifest first, so none was left half-deleted):\n${list}\n`;
  if (report.failures.every((f) => f.kind === 'fault'))
    return new FaultError(
      `${head}The store failed or throttled after every retry; this is not a permission problem. Re-running is safe: retention is idempotent.`,
    );
  const permission = report.failures.some((f) => f.kind === 'permission');
  const fix =
    target !== 's3'
      ? "Check the Neon API key's access and re-run; retention is idempotent."
      : permission
        ? 'Check that the credentials allow s3:DeleteObject on the bucket, and re-run; retention is idempotent.'
        : 'Re-run; retention is idempotent.';
  return new UserError(head + fix);
}

/** A month-by-day calendar of kept and deleted backups: the plan at a glance. */
export function calendarPicture(report: PruneReport): string {
  const days = new Map<string, 'keep' | 'remove' | 'locked'>();
  for (const r of report.remove) days.set(r.time.slice(0, 10), days.get(r.time.slice(0, 10)) ?? 'remove');
  for (const l of report.locked) days.set(l.time.slice(0, 10), 'locked');
  for (const k of report.keep) days.set(k.time.slice(0, 10), 'keep');
  if (days.size === 0) return '';
  const months = [...new Set([...days.keys()].map((d) => d.slice(0, 7)))].sort().reverse();
  const lines = [
    '| Month | ' + Array.from({ length: 31 }, (_, i) => String(i + 1)).join(' | ') + ' |',
    '|---|' + '---|'.repeat(31),
  ];
  for (const m of months) {
    const cells = Array.from({ length: 31 }, (_, i) => {
      const v = days.get(`${m}-${String(i + 1).padStart(2, '0')}`);
      return v === 'keep' ? '🟩' : v === 'remove' ? '🟥' : v === 'locked' ? '🔒' : '';
    });
    lines.push(`| ${m} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

export function pruneSummary(r: PruneReport, limit = 100): string {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const lines = [
    `## Retention ${r.dryRun ? 'plan (dry run: nothing deleted)' : 'applied'}: ${r.keep.length} kept, ${r.remove.length} ${verb} (${formatBytes(r.freedBytes)})${r.locked.length ? `, ${r.locked.length} locked` : ''}`,
    '',
    `\`${r.where}\` · ${r.policy} · days in ${r.timeZone}`,
    '',
  ];
  if (r.failures.length)
    lines.push(
      `**${r.failures.length} deletion(s) failed:**`,
      '',
      ...r.failures.slice(0, limit).map((f) => `- \`${f.id}\`: ${f.error}`),
      '',
    );
  const picture = calendarPicture(r);
  if (picture)
    lines.push(`🟩 kept · 🟥 ${verb}${r.locked.length ? ' · 🔒 locked' : ''} (by backup day, UTC)`, '', picture, '');
  lines.push('### Kept', '', '| Backup | Time | Size | Why |', '|---|---|---|---|');
  for (const k of r.keep.slice(0, limit))
    lines.push(`| \`${k.name ?? k.id}\` | ${k.time} | ${formatBytes(k.bytes)} | ${k.reasons!.join(', ')} |`);
  if (r.keep.length > limit) lines.push(`| ... ${r.keep.length - limit} more in the plan file | | | |`);
  lines.push(
    '',
    `### ${r.dryRun ? 'Would delete' : 'Deleted'}`,
    '',
    '| Backup | Time | Size | Note |',
    '|---|---|---|---|',
  );
  for (const d of r.remove.slice(0, limit))
    lines.push(`| \`${d.name ?? d.id}\` | ${d.time} | ${formatBytes(d.bytes)} | ${d.note ?? 'no rule keeps it'} |`);
  if (r.remove.length > limit) lines.push(`| ... ${r.remove.length - limit} more in the plan file | | | |`);
  if (r.locked.length) {
    lines.push(
      '',
      '### Locked (S3 Object Lock): left in place',
      '',
      'No rule keeps these, but the store protects them until their retain-until date; a later run deletes them then.',
      '',
      '| Backup | Time | Size | Locked until |',
      '|---|---|---|---|',
    );
    for (const l of r.locked.slice(0, limit))
      lines.push(`| \`${l.id}\` | ${l.time} | ${formatBytes(l.bytes)} | ${l.note} |`);
    if (r.locked.length > limit) lines.push(`| ... ${r.locked.length - limit} more in the plan file | | | |`);
  }
  if (r.untouched.length) {
    lines.push('', '### Untouched', '', ...r.untouched.slice(0, limit).map((u) => `- \`${u.id}\`: ${u.note}`));
  }
  if (r.abortedUploads.length)
    lines.push(
      '',
      `${r.dryRun ? 'Would abort' : 'Aborted'} ${r.abortedUploads.length} unfinished multipart upload(s).`,
    );
  return lines.join('\n') + '\n';
}

/**
 * Retention over Neon snapshot branches: only branches named with `branchPrefix`, never the default, a protected
 * or a root branch, nor one with children; the newest snapshot is always kept.
 */
export async function pruneNeon(
  neon: NeonApi,
  o: { projectId: string; branchPrefix: string } & PruneSettings,
  deps: { log: Logger; now?: Date; files?: Files },
): Promise<PruneReport> {
  const now = deps.now ?? new Date();
  const where = `Neon project ${o.projectId}, branches named ${o.branchPrefix}*`;
  const branches = await listBeforeDeleting(`the branches of ${o.projectId}`, () => neon.branches(o.projectId));
  const report = emptyReport('neon', where, o, now);
  const time = (b: Branch) => b.parent_timestamp ?? b.created_at;
  const row = (b: Branch): PlanRow => ({
    id: b.id,
    time: new Date(time(b)).toISOString(),
    bytes: b.logical_size ?? 0,
    name: b.name,
  });
  const parents = new Set(branches.map((b) => b.parent_id).filter(Boolean));
  const candidates: Branch[] = [];
  for (const b of branches.filter((x) => x.name.startsWith(o.branchPrefix))) {
    const why = b.default
      ? 'the default branch'
      : b.protected
        ? 'a protected branch'
        : !b.parent_id
          ? 'a root branch'
          : parents.has(b.id)
            ? 'a branch with children'
            : undefined;
    if (why) report.untouched.push({ ...row(b), note: `${b.name}: ${why}, never deleted` });
    else candidates.push(b);
  }
  return planAndDelete(
    candidates,
    { time, row, what: 'branch', delete: (b) => neon.deleteBranch(o.projectId, b.id) },
    report,
    neon,
    o,
    deps,
  );
}

/**
 * Retention over Neon snapshots (the Snapshots API): only manual snapshots named with `branchPrefix` (the API has
 * no annotations on snapshots); the schedule's own snapshots are left to the schedule's retention; the newest
 * candidate is always kept, and a failed listing deletes nothing.
 */
export async function pruneNeonSnapshots(
  neon: NeonApi,
  o: { projectId: string; branchPrefix: string } & PruneSettings,
  deps: { log: Logger; now?: Date; files?: Files },
): Promise<PruneReport> {
  const now = deps.now ?? new Date();
  const where = `Neon project ${o.projectId}, snapshots named ${o.branchPrefix}*`;
  const snapshots = await listBeforeDeleting(`the snapshots of ${o.projectId}`, () => neon.snapshots(o.projectId));
  const report = emptyReport('neon-snapshots', where, o, now);
  const time = (x: Snapshot) => x.timestamp ?? x.created_at;
  const row = (x: Snapshot): PlanRow => ({
    id: x.id,
    time: new Date(time(x)).toISOString(),
    bytes: x.full_size ?? x.diff_size ?? 0,
    name: x.name,
  });
  const candidates: Snapshot[] = [];
  for (const x of snapshots.filter((y) => y.name.startsWith(o.branchPrefix))) {
    if (x.manual === false)
      report.untouched.push({ ...row(x), note: `${x.name}: taken by the backup schedule, which expires it itself` });
    else candidates.push(x);
  }
  return planAndDelete(
    candidates,
    { time, row, what: 'snapshot', delete: (x) => neon.deleteSnapshot(o.projectId, x.id) },
    report,
    neon,
    o,
    deps,
  );
}

/** The shared half of Neon retention: plan (the newest candidate protected), write the plan, delete one by one. */
async function planAndDelete<T extends { id: string; name: string }>(
  candidates: T[],
  how: { time: (x: T) => string; row: (x: T) => PlanRow; what: string; delete: (x: T) => Promise<Operation[]> },
  report: PruneReport,
  neon: NeonApi,
  o: { projectId: string } & PruneSettings,
  deps: { log: Logger; now?: Date; files?: Files },
): Promise<PruneReport> {
  const now = deps.now ?? new Date();
  const newest = [...candidates].sort((a, b) => Date.parse(how.time(b)) - Date.parse(how.time(a)))[0];
  const plan = planRetention(
    candidates.map((x) => ({
      id: x.id,
      time: new Date(how.time(x)),
      item: x,
      protect: x === newest ? ['newest snapshot'] : [],
    })),
    o.policy,
    { timeZone: o.timeZone, now },
  );
  report.keep = plan.keep.map((k) => ({ ...how.row(k.item), reasons: k.reasons }));
  report.remove = plan.remove.map((r) => how.row(r.item));
  report.freedBytes = report.remove.reduce((s, r) => s + r.bytes, 0);
  (deps.files ?? localFiles).writeText(o.planFile, JSON.stringify(report, null, 2) + '\n');
  deps.log.info(
    `${report.policy} (${o.timeZone}): ${report.keep.length} kept, ${report.remove.length} to delete, ${report.untouched.length} untouched in ${report.where}`,
  );
  if (o.dryRun) {
    deps.log.info('Dry run: nothing was deleted.');
    return report;
  }
  for (const r of plan.remove) {
    try {
      await neon.waitFor(o.projectId, await how.delete(r.item));
      deps.log.info(`Deleted ${how.what} ${r.item.name} (${r.item.id})`);
    } catch (e) {
      report.failures.push({
        id: `${r.item.name} (${r.item.id})`,
        error: (e as Error).message,
        ...(isFault(e) ? { kind: 'fault' } : {}),
      });
    }
  }
  (deps.files ?? localFiles).writeText(o.planFile, JSON.stringify(report, null, 2) + '\n');
  return report;
}
