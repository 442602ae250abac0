import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { Cancellation } from '../lib/cancel.js';
import { UserError } from '../lib/errors.js';
import { compactUtc, databasePrefix } from '../lib/keys.js';
import { formatSeconds, type Logger } from '../lib/log.js';
import { githubContext, type Manifest } from '../lib/manifest.js';
import { recordLock, type ObjectLockWrite } from '../lib/object-lock.js';
import { isoSeconds, type NeonApi } from '../lib/neon.js';
import { connectPg } from '../lib/pg-client.js';
import { parsePgUrl } from '../lib/pg-url.js';
import { withRetry } from '../lib/retry.js';
import type { ObjectStore } from '../lib/s3.js';
import {
  artifactProblem,
  listBackups,
  readManifest,
  resolveBackup,
  type NeonVerificationFacts,
  type VerificationRecord,
} from './catalog.js';
import { neonSnapshot, type PointInTime } from './neon-snapshot.js';
import { compareCounts, runChecks, VerificationFailed, type VerificationOutcome } from './verify.js';
import type { RunContext } from '../lib/run-context.js';

/** The safety net: a verification branch that could not be deleted expires by itself after this long at least. */
export const VERIFY_BRANCH_TTL_SECONDS = 3600;

export interface NeonVerifyOptions extends PointInTime {
  prefix: string;
  /** The backup stream whose manifest holds the expected counts. */
  database: string;
  backupId: string;
  projectId: string;
  /** The branch the backups were taken of (name or id); empty: the project's default branch. */
  branch?: string;
  /** The database on the branch; empty: the manifest's source database. */
  neonDatabase?: string;
  role: string;
  checksSql?: { path: string; text: string };
  maxAgeSeconds?: number;
  timeoutSeconds: number;
}

/** `mismatches`: failures at an exact point, reported differences at an approximate one. */
export interface NeonVerifyResult extends VerificationOutcome {
  facts: NeonVerificationFacts;
  /** Set when the branch could not be deleted. */
  deleteError?: string;
}

/** Which point of the Neon history to branch at, and whether it is exactly the dump's snapshot. */
export function verificationPoint(
  manifest: Manifest,
  given: PointInTime,
): { point: PointInTime; pointFrom: NeonVerificationFacts['pointFrom']; approximate: boolean } {
  if (given.lsn || given.timestamp) return { point: given, pointFrom: 'input', approximate: false };
  if (manifest.snapshotLsn)
    return {
      point: { lsn: manifest.snapshotLsn },
      pointFrom: 'snapshotLsn',
      approximate: manifest.snapshotLsnApproximate === true,
    };
  // Backups from before snapshotLsn, or from a standby: the snapshot's time, to the second, is all there is.
  return {
    point: { timestamp: new Date(Date.parse(manifest.snapshotAt ?? manifest.startedAt)) },
    pointFrom: 'snapshotAt',
    approximate: true,
  };
}

/**
 * Point-in-time verification on Neon: a short-lived branch (with an endpoint) at the point of an S3 backup, every
 * table's exact row count compared with that backup's manifest, the same checks-sql as an S3 verification, RTO
 * from the branch request to the first answered query. The branch is deleted in every case (it also has a TTL),
 * and a verification record (`source: neon`) is written beside the backup.
 */
export async function runNeonVerify(
  o: NeonVerifyOptions,
  deps: { store: ObjectStore; neon: NeonApi; log: Logger; now?: () => Date; cancel?: Cancellation; run: RunContext },
): Promise<NeonVerifyResult> {
  const { store, neon, log } = deps;
  const cancel = deps.cancel ?? new Cancellation();
  const now = deps.now ?? (() => new Date());
  const startedAt = now();
  const where = `s3://${store.bucket}/${databasePrefix(o.prefix, o.database)}`;
  const entries = await listBackups(store, o.prefix, o.database);
  const newest = entries.filter((e) => e.complete).at(-1);
  if (o.maxAgeSeconds !== undefined && newest) {
    const age = (startedAt.getTime() - newest.time.getTime()) / 1000;
    if (age > o.maxAgeSeconds)
      throw new VerificationFailed(
        `The newest complete backup under ${where} is ${newest.backupId}, ${formatSeconds(age)} old, older than \`max-age\` (${formatSeconds(o.maxAgeSeconds)}). Backups have stopped or are failing: check the backup workflow's recent runs.`,
      );
  }
  const entry = resolveBackup(entries, o.backupId, where);
  const manifest = await readManifest(store, entry);
  const broken = artifactProblem(entry, manifest);
  if (broken) throw new VerificationFailed(`Backup ${entry.backupId} is broken: ${broken}.`);
  const { point, pointFrom, approximate } = verificationPoint(manifest, o);
  const project = await neon.project(o.projectId);
  if (pointFrom !== 'input') {
    const oldest = startedAt.getTime() - project.history_retention_seconds * 1000;
    if (Date.parse(manifest.snapshotAt ?? manifest.startedAt) < oldest)
      throw new UserError(
        `Backup ${entry.backupId} (snapshot ${manifest.snapshotAt ?? manifest.startedAt}) is older than the Neon project's history window of ${formatSeconds(project.history_retention_seconds)}: no branch can be made at its point. Verify a newer backup (\`backup-id\`), or raise the project's history retention.`,
      );
  }
  const database = o.neonDatabase ?? manifest.source.database;
  const expiresAt = new Date(
    Math.ceil((startedAt.getTime() + Math.max(VERIFY_BRANCH_TTL_SECONDS, 2 * o.timeoutSeconds) * 1000) / 1000) * 1000,
  );
  const branchName = `pba-verify-${entry.backupId.toLowerCase()}-${randomBytes(3).toString('hex')}`;
  const facts: NeonVerificationFacts = {
    projectId: o.projectId,
    branchName,
    ...(point.lsn ? { lsn: point.lsn } : {}),
    ...(point.timestamp ? { timestamp: isoSeconds(point.timestamp) } : {}),
    pointFrom,
    approximate,
    branchDeleted: false,
    expiresAt: expiresAt.toISOString(),
  };
  const result: NeonVerifyResult = {
    backupId: entry.backupId,
    status: 'failed',
    rtoSeconds: 0,
    rpoSeconds: (startedAt.getTime() - Date.parse(manifest.snapshotAt ?? manifest.startedAt)) / 1000,
    tablesChecked: 0,
    rowsChecked: 0,
    failures: [],
    mismatches: [],
    extraTables: [],
    checkFailures: [],
    facts,
  };
  log.info(
    `Verifying backup ${entry.backupId} on Neon project ${o.projectId}: branch "${branchName}" at ${point.lsn ? `LSN ${point.lsn}` : isoSeconds(point.timestamp!)} (from ${pointFrom === 'input' ? 'the inputs' : `the manifest's ${pointFrom}`}${approximate ? ', approximate: differences are reported, not failed' : ''}), expiring ${facts.expiresAt}`,
  );

  const t0 = performance.now();
  let client: pg.Client | undefined;
  // The branch goes in every case: after the checks, on a failure, and on a cancel of the run.
  const removeBranch = cancel.onCancel(`deleted the Neon verification branch "${branchName}"`, () =>
    deleteVerificationBranch(o.projectId, branchName, facts, result, { neon, log }),
  );
  try {
    const snap = await neonSnapshot(
      {
        projectId: o.projectId,
        branch: o.branch,
        name: branchName,
        expiresAt,
        createEndpoint: true,
        database,
        role: o.role,
        ...point,
      },
      { neon, log, now: startedAt, cancel, run: deps.run },
    );
    facts.branchId = snap.branch.id;
    const target = parsePgUrl('neon connection URI', snap.databaseUrl!, log);
    // The endpoint may still be starting: connecting is retried until `timeout`.
    client = await withRetry(
      async () => {
        const c = await connectPg(target, 'neon connection URI');
        try {
          await c.query('SELECT 1');
          return c;
        } catch (e) {
          await c.end().catch(() => undefined);
          throw e;
        }
      },
      {
        attempts: 1000,
        baseDelayMs: 250,
        maxDelayMs: 5000,
        deadline: Date.now() + o.timeoutSeconds * 1000,
        classify: () => ({ retry: true }),
        onRetry: (e, attempt) =>
          log.info(`Connecting to the branch failed (${(e as Error).message}); retry ${attempt}`),
      },
    ).catch((e: Error) => {
      throw new VerificationFailed(
        `The branch's endpoint did not answer a query within \`timeout\` (${formatSeconds(o.timeoutSeconds)}): ${e.message}`,
      );
    });
    result.rtoSeconds = (performance.now() - t0) / 1000;
    log.info(`The branch answered ${formatSeconds(result.rtoSeconds)} after it was requested (RTO)`);

    // Tables whose data was excluded from the dump have no count to compare with.
    const expected = { ...manifest, tables: manifest.tables.filter((t) => !t.dataExcluded) };
    await compareCounts(client, expected, [], result);
    const excluded = new Set(manifest.tables.filter((t) => t.dataExcluded).map((t) => `${t.schema}.${t.name}`));
    result.extraTables = result.extraTables.filter((t) => !excluded.has(t));
    if (o.checksSql) await runChecks(client, o.checksSql, result);
    if (result.mismatches.length) {
      const listed = result.mismatches
        .slice(0, 10)
        .map((m) => `${m.table} (manifest ${m.expected ?? 'absent'}, branch ${m.actual ?? 'missing'})`)
        .join(', ');
      if (approximate) {
        facts.differences = result.mismatches;
        log.warn(
          `${result.mismatches.length} table(s) differ from the manifest at an approximate point (reported, not failed): ${listed}`,
        );
      } else
        result.failures.push(
          `${result.mismatches.length} table(s) on the Neon branch at the backup's point differ from the manifest: ${listed}`,
        );
    }
    for (const c of result.checkFailures)
      result.failures.push(
        `check failed: ${c.statement}${c.error ? ` (${c.error})` : ''}${c.rows.length ? `: ${JSON.stringify(c.rows.slice(0, 10))}` : ''}`,
      );
    result.status = result.failures.length ? 'failed' : 'passed';
  } catch (e) {
    // A verdict on the backup's point is recorded; a fault or a configuration problem is thrown (no verdict).
    if (!(e instanceof VerificationFailed)) throw e;
    result.failures.push(e.message);
    result.status = 'failed';
  } finally {
    if (!result.rtoSeconds) result.rtoSeconds = (performance.now() - t0) / 1000;
    await client?.end().catch(() => undefined);
    await removeBranch.run();
  }
  result.verificationKey = await writeNeonRecord(
    store,
    entry.manifestKey!,
    result,
    startedAt,
    githubContext(deps.run),
    recordLock(manifest, new Date()),
  );
  return result;
}

/** Deletes the branch by id, or finds it by name when its creation's answer never came; retried by the adapter. */
async function deleteVerificationBranch(
  projectId: string,
  name: string,
  facts: NeonVerificationFacts,
  result: NeonVerifyResult,
  deps: { neon: NeonApi; log: Logger },
): Promise<void> {
  try {
    const id = facts.branchId ?? (await deps.neon.branches(projectId)).find((b) => b.name === name)?.id;
    if (id) {
      await deps.neon.deleteBranch(projectId, id);
      deps.log.info(`Deleted the verification branch "${name}" (${id})`);
    }
    facts.branchDeleted = true;
  } catch (e) {
    result.deleteError = (e as Error).message;
    deps.log.warn(
      `Could not delete the verification branch "${name}"${facts.branchId ? ` (${facts.branchId})` : ''}: ${result.deleteError}. It expires by itself at ${facts.expiresAt}; delete it in the Neon console to stop paying for it sooner.`,
    );
  }
}

async function writeNeonRecord(
  store: ObjectStore,
  manifestKey: string,
  r: NeonVerifyResult,
  at: Date,
  github: Manifest['github'],
  /** Locked like its backup (S3 Object Lock), read from the manifest. */
  lock?: ObjectLockWrite,
): Promise<string> {
  const prefix = manifestKey.slice(0, -'manifest.json'.length);
  const key = `${prefix}verifications/${compactUtc(at)}-neon-${randomBytes(2).toString('hex')}.json`;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  const record: VerificationRecord = {
    formatVersion: 1,
    backupId: r.backupId,
    status: r.status,
    mode: 'verify',
    source: 'neon',
    verifiedAt: at.toISOString(),
    rtoSeconds: round(r.rtoSeconds),
    rpoSeconds: round(r.rpoSeconds),
    timings: { untilFirstQuerySeconds: round(r.rtoSeconds) },
    tablesChecked: r.tablesChecked,
    rowsChecked: r.rowsChecked,
    failures: r.failures,
    versions: {},
    github,
    neon: r.facts,
  };
  await store.putJson(key, record, undefined, lock);
  return key;
}

export function neonVerifySummary(r: NeonVerifyResult): string {
  const f = r.facts;
  const verdict =
    r.status === 'passed' ? '✅ Neon point in time verified' : '❌ Neon point-in-time verification failed';
  const lines = [
    `## ${verdict}: \`${r.backupId}\``,
    '',
    '| | |',
    '|---|---|',
    `| Branch | \`${f.branchName}\`${f.branchId ? ` (${f.branchId})` : ''}, project \`${f.projectId}\` |`,
    `| Point in time | ${f.lsn ? `LSN ${f.lsn}` : f.timestamp} (${f.pointFrom === 'input' ? 'from the inputs' : `the backup's ${f.pointFrom}`}${f.approximate ? '; approximate: differences reported, not failed' : '; exact'}) |`,
    `| RTO | ${formatSeconds(r.rtoSeconds)} (branch request to first answered query) |`,
    `| RPO | ${formatSeconds(r.rpoSeconds)} (age of the backup's snapshot) |`,
    `| Checked | ${r.tablesChecked} tables, ${r.rowsChecked.toLocaleString('en-US')} rows against the manifest |`,
    `| Branch deleted | ${f.branchDeleted ? 'yes' : `**no**: \`${f.branchName}\` could not be deleted (${r.deleteError ?? 'unknown error'}); it expires at ${f.expiresAt}`} |`,
    '',
  ];
  if (r.failures.length) lines.push('### Failures', '', ...r.failures.map((x) => `- ${x.replace(/\n/g, ' ')}`), '');
  if (r.mismatches.length) {
    lines.push(
      f.approximate ? '### Differences (approximate point: not failed)' : '### Differences',
      '',
      '| Table | Manifest rows | Branch rows |',
      '|---|---|---|',
      ...r.mismatches.map((m) => `| \`${m.table}\` | ${m.expected ?? 'absent'} | ${m.actual ?? 'missing'} |`),
      '',
    );
  }
  if (r.extraTables.length)
    lines.push(
      `Tables not in the manifest (reported, not failed): ${r.extraTables.map((t) => `\`${t}\``).join(', ')}`,
      '',
    );
  return lines.join('\n');
}
