import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import {
  checkFreeSpace,
  ChecksumMismatch,
  DecodeFailed,
  diskPlan,
  fetchArtifact,
  streamArtifact,
} from './artifact-fetch.js';
import { UserError } from '../lib/errors.js';
import { compactUtc, databasePrefix } from '../lib/keys.js';
import { formatBytes, formatSeconds } from '../lib/log.js';
import { githubContext, type Artifact, type Manifest } from '../lib/manifest.js';
import { mapLimit } from '../lib/map-limit.js';
import { restorePlan } from '../lib/parallel-plan.js';
import { recordLock } from '../lib/object-lock.js';
import { connectPg } from '../lib/pg-client.js';
import { exactRowCount, serverVersion as readServerVersion, userTables } from '../lib/pg-catalog.js';
import { libpqEnv, urlWithoutPassword, type PgTarget } from '../lib/pg-url.js';
import { findPgRestore, pgRestoreTooOld, readArchiveHeader, versionMajor } from '../lib/dump-version.js';
import type { PgTool } from '../lib/pgtools.js';
import { ChildWatch } from '../lib/process.js';
import { operation, type Operation, type OperationDeps } from './operation.js';
import type { ObjectStore } from '../lib/s3.js';
import { summarizeRestoreErrors } from '../lib/extensions.js';
import { splitSql, statementLabel } from '../lib/sql-split.js';
import { indexOwners, parseToc, selectTables, type QualifiedName } from '../lib/toc.js';
import {
  artifactProblem,
  listBackups,
  markBrokenNewest,
  readManifest,
  resolveBackup,
  type BackupEntry,
  type VerificationRecord,
} from './catalog.js';
import { dropRoles, prepareTarget, type CreateRoles } from './roles.js';
import { prepareDestination, type Destination, type RestoreStrategy } from './restore-strategy.js';

export interface VerifyOptions {
  prefix: string;
  database: string;
  backupId: string;
  target: PgTarget;
  ageIdentities: string[];
  /** `recover`: like verify, into a scratch database, then `afterRestore` (src/core/recover.ts). */
  mode: 'verify' | 'restore' | 'recover';
  confirm?: string;
  clean: boolean;
  tables: QualifiedName[];
  checksSql?: { path: string; text: string };
  maxAgeSeconds?: number;
  jobs: number;
  pgRestorePath?: string;
  /** Restore mode: create the roles the backup refers to that the target lacks (verify mode always does). */
  createRoles: CreateRoles;
  /** Where the decompressed dump is written for (parallel) pg_restore. */
  tempDir?: string;
  /** Recover mode: runs on the checked scratch copy before it is dropped. */
  afterRestore?: (scratch: pg.Client, scratchDb: string) => Promise<void>;
  /** Restore mode: where the restore goes (see restore-strategy.ts). */
  strategy: RestoreStrategy;
  newDatabase?: string;
  keepFailed: boolean;
  /** Marked databases that killed runs left and that are older than this are dropped first. */
  staleGraceSeconds: number;
}

export interface TableMismatch {
  table: string;
  expected: number | null;
  actual: number | null;
}

export interface CheckFailure {
  statement: string;
  error?: string;
  rows: Record<string, unknown>[];
}

/** What every verification (S3 restore, Neon point in time) finds out, whatever it restored into. */
export interface VerificationOutcome {
  backupId: string;
  status: 'passed' | 'failed';
  rtoSeconds: number;
  rpoSeconds: number;
  tablesChecked: number;
  rowsChecked: number;
  verificationKey?: string;
  failures: string[];
  mismatches: TableMismatch[];
  extraTables: string[];
  checkFailures: CheckFailure[];
}

export interface VerifyResult extends VerificationOutcome {
  timings: Record<string, number>;
  manifest?: Manifest;
  restoredInto: string;
  /** Roles created on the target server because the backup refers to them (dropped again after a verification). */
  rolesCreated: string[];
  /** Verify mode: the created roles dropped again (a role something else came to use is left). */
  rolesDropped?: string[];
  destination?: Destination;
}

/** Flags of every restore; the roles the archive needs are read with the same ones. */
const RESTORE_FLAGS = ['--no-owner', '--no-acl'];

/**
 * pg_restore errors that do not make a restore wrong: objects a non-superuser cannot touch on a fresh database,
 * and the public schema that template0 already has. Anything else fails the verification.
 */
export const HARMLESS_RESTORE_ERRORS: RegExp[] = [
  /must be owner of extension \w+/,
  /schema "public" already exists/,
  /permission denied to (create|comment on) extension/,
  /must be owner of schema public/,
];

/** A verification failure: the backup, not the input, is at fault. Reported with status=failed. */
export class VerificationFailed extends UserError {}

export type VerifyDeps = OperationDeps;

/** What every stage of a verification shares: the store, the log, the run, its clock and ports. */
type VerifyRun = Operation;

/** The backup a verification restores: its catalogue entry, manifest and restore plan, checked before any work. */
interface ChosenBackup {
  entry: BackupEntry;
  manifest: Manifest;
  plan: ReturnType<typeof restorePlan>;
  /** The archive pg_restore reads from a file: the whole dump, or a multi-artifact backup's pre-data. */
  artifact: Artifact;
}

/** The target server: the admin connection (owned here: `close` ends it) and the pg_restore matching it. */
interface OpenTarget {
  admin: pg.Client;
  server: Awaited<ReturnType<typeof readServerVersion>>;
  pgRestore: PgTool;
  close(result: VerifyResult): Promise<void>;
}

/** The local files of a restore, all inside the run's work directory. */
interface Downloaded {
  dumpFile: string;
  postFile?: string;
  globalsFile?: string;
}

/**
 * Verify (and restore, and recover) one backup, in stages: choose the backup, open the target, then in a work
 * directory download & check, prepare the target, restore, compare; and record the verdict. Each stage owns what
 * it opens: the target its admin connection and the roles it created, the work stage its directory and the
 * database it restored into.
 */
export async function runVerify(o: VerifyOptions, deps: VerifyDeps): Promise<VerifyResult> {
  const ctx: VerifyRun = operation(deps);
  const startedAt = ctx.now();
  const chosen = await chooseBackup(o, ctx, startedAt);
  const result = emptyResult(chosen, startedAt);
  const target = await openTarget(o, chosen, ctx);
  try {
    await restoreAndCheck(o, chosen, target, result, ctx);
  } finally {
    await target.close(result);
  }
  // A cancelled run is no verdict on the backup: it records nothing.
  ctx.cancel.throwIfCancelled();
  if (o.mode !== 'recover')
    result.verificationKey = await writeRecord(
      ctx.store,
      chosen.entry,
      result,
      o,
      startedAt,
      target.server.full,
      target.pgRestore.version,
      githubContext(ctx.run),
    );
  return result;
}

/** Stage 1: the backup to restore, from what the store holds; refused (before any download) when it cannot be. */
async function chooseBackup(o: VerifyOptions, ctx: VerifyRun, startedAt: Date): Promise<ChosenBackup> {
  const { store, log } = ctx;
  const where = `s3://${store.bucket}/${databasePrefix(o.prefix, o.database)}`;
  const entries = await listBackups(store, o.prefix, o.database);
  await markBrokenNewest(store, entries);
  const newest = entries.filter((e) => e.complete).at(-1);
  if (o.maxAgeSeconds !== undefined && newest) {
    const age = (startedAt.getTime() - newest.time.getTime()) / 1000;
    if (age > o.maxAgeSeconds) {
      throw new VerificationFailed(
        `The newest complete backup under ${where} is ${newest.backupId}, ${formatSeconds(age)} old, older than \`max-age\` (${formatSeconds(o.maxAgeSeconds)}). Backups have stopped or are failing: check the backup workflow's recent runs.`,
      );
    }
  }
  const entry = resolveBackup(entries, o.backupId, where);
  for (const b of entries.filter((e) => e.broken && e.backupId > entry.backupId))
    log.warn(`Backup ${b.backupId} is broken (${b.broken}) and was skipped.`);
  const manifest = await readManifest(store, entry);
  const broken = artifactProblem(entry, manifest);
  if (broken) throw new VerificationFailed(`Backup ${entry.backupId} is broken: ${broken}. It cannot be restored.`);
  const plan = restorePlan(manifest);
  const artifact = plan.dump ?? plan.preData!;
  if (plan.preData) refuseForMultiArtifact(o, entry.backupId);
  if (artifact.encryption && o.ageIdentities.length === 0) {
    throw new UserError(
      `Backup ${entry.backupId} is age-encrypted; set \`age-identity\` to the secret key of one of its recipients (${artifact.encryption.recipients.join(', ')}).`,
    );
  }
  return { entry, manifest, plan, artifact };
}

function emptyResult({ entry, manifest }: ChosenBackup, startedAt: Date): VerifyResult {
  return {
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
    timings: {},
    manifest,
    restoredInto: '',
    rolesCreated: [],
  };
}

/** Stage 2: the admin connection and a pg_restore that can read this backup and write to this server. */
async function openTarget(o: VerifyOptions, { entry, manifest }: ChosenBackup, ctx: VerifyRun): Promise<OpenTarget> {
  const admin = await connectPg(o.target, 'target-url');
  try {
    const server = await readServerVersion(admin);
    const pgRestore = await findPgRestore(
      dumpVersionsOf(entry, manifest),
      { version: server.version, major: server.major },
      o.pgRestorePath ? { input: 'pg-restore-path', path: o.pgRestorePath } : undefined,
    );
    ctx.log.info(
      `Restoring with ${pgRestore.path} ${pgRestore.version} (backup written by pg_dump ${manifest.source.pgDumpVersion}) into PostgreSQL ${server.version}`,
    );
    return {
      admin,
      server,
      pgRestore,
      async close(result) {
        // After the restored database is gone: only then is nothing of ours using the roles.
        if (o.mode !== 'restore' && result.rolesCreated.length && !result.rolesDropped)
          result.rolesDropped = await dropRoles(admin, result.rolesCreated, ctx.log);
        await admin.end().catch(() => undefined);
      },
    };
  } catch (e) {
    await admin.end().catch(() => undefined);
    throw e;
  }
}

function dumpVersionsOf(entry: BackupEntry, manifest: Manifest) {
  return {
    backupId: entry.backupId,
    pgDumpVersion: manifest.source.pgDumpVersion,
    sourceServerVersion: manifest.source.serverVersion,
  };
}

/**
 * Stages 3-6 in a work directory that this stage owns, as it owns the database it restores into: download &
 * check, prepare the target, restore, compare. A failure of the backup (VerificationFailed) becomes the verdict; a
 * configuration problem (wrong identity, permissions) is no verdict on the backup and is thrown.
 */
async function restoreAndCheck(
  o: VerifyOptions,
  chosen: ChosenBackup,
  target: OpenTarget,
  result: VerifyResult,
  ctx: VerifyRun,
): Promise<void> {
  const work = ctx.files.makeWorkDir(o.tempDir ?? os.tmpdir(), 'pba-verify-');
  const t0 = performance.now();
  let dest: Destination | undefined;
  try {
    // In restore mode the admin connection is to the target database itself.
    if (o.mode === 'restore') await guardRestoreTarget(target.admin, o);
    result.restoredInto = o.target.database;
    const files = await downloadStage(chosen, target.pgRestore, work, o.ageIdentities, result, ctx);
    // Extensions and roles the archive needs, before any restore work (a missing extension stops here).
    await prepareTarget({
      admin: target.admin,
      tool: target.pgRestore,
      file: files.postFile ? [files.dumpFile, files.postFile] : files.dumpFile,
      restoreFlags: RESTORE_FLAGS,
      // A recovery restores into a scratch copy, as a verification does: its roles are temporary too.
      mode: o.mode === 'recover' ? 'verify' : o.mode,
      createRoles: o.createRoles,
      globalsFile: files.globalsFile,
      comment: `Created by postgres-backup-actions verify-restore (${o.mode}) for backup ${chosen.entry.backupId}`,
      created: result.rolesCreated,
      log: ctx.log,
      processes: ctx.processes,
      files: ctx.files,
      cancel: ctx.cancel,
    });
    // Where the restore goes (a scratch database for verify and recover): created only now, after the checks above.
    dest = await prepareDestination(
      target.admin,
      {
        target: o.target,
        mode: o.mode === 'restore' ? 'restore' : 'verify',
        strategy: o.strategy,
        newDatabase: o.newDatabase,
        keepFailed: o.keepFailed,
        staleGraceSeconds: o.staleGraceSeconds,
        backupId: chosen.entry.backupId,
        tables: o.tables.length > 0,
      },
      ctx,
    );
    result.destination = dest;
    result.restoredInto = dest.database;
    await restoreStage(o, chosen, target.pgRestore, dest, files, work, result, ctx);
    await compareStage(o, chosen.manifest, dest.database, result, ctx);
    // Swap, keep or drop: the target is touched only now, and only after a passed check.
    await dest.finish(result.status === 'passed');
  } catch (e) {
    if (!(e instanceof VerificationFailed) && !(e instanceof UserError)) throw e;
    result.failures.push(e.message);
    result.status = 'failed';
    if (!(e instanceof VerificationFailed)) throw e;
  } finally {
    result.rtoSeconds = (performance.now() - t0) / 1000;
    ctx.files.remove(work);
    const database = result.restoredInto;
    await dest
      ?.finish(false)
      .catch((e: Error) => ctx.log.warn(`Could not drop the database "${database}": ${e.message}`));
  }
}

/**
 * Stage 3: download, checking size and SHA-256 of the bytes as stored, into a file pg_restore can seek in. A
 * multi-artifact backup: only its pre-data and post-data archives (small); the data streams in the restore stage.
 */
async function downloadStage(
  { entry, manifest, plan, artifact }: ChosenBackup,
  pgRestore: PgTool,
  work: string,
  identities: string[],
  result: VerifyResult,
  ctx: VerifyRun,
): Promise<Downloaded> {
  const { log } = ctx;
  checkFreeSpace(work, diskPlan(manifest), ctx.files.freeBytes(work));
  const dumpFile = path.join(work, plan.dump ? 'dump.pgdump' : 'pre-data.pgdump');
  const postFile = plan.postData ? path.join(work, 'post-data.pgdump') : undefined;
  const t = performance.now();
  await downloadArtifact(ctx, artifact, dumpFile, identities);
  if (plan.postData) await downloadArtifact(ctx, plan.postData, postFile!, identities);
  // The archive itself says which pg_dump wrote it; trust it over the manifest.
  const header = await readArchiveHeader(dumpFile);
  if (header?.pgDumpVersion && (versionMajor(header.pgDumpVersion) ?? 0) > pgRestore.major) {
    throw pgRestoreTooOld({ ...dumpVersionsOf(entry, manifest), pgDumpVersion: header.pgDumpVersion }, pgRestore);
  }
  result.timings.downloadSeconds = (performance.now() - t) / 1000;
  log.info(
    plan.dump
      ? `Downloaded and checked ${artifact.key} (${formatBytes(artifact.bytes)}, SHA-256 ok) in ${formatSeconds(result.timings.downloadSeconds)}`
      : `Downloaded and checked the pre-data and post-data archives of a multi-artifact backup (SHA-256 ok) in ${formatSeconds(result.timings.downloadSeconds)}; its ${plan.data.length} data artifact(s) stream into pg_restore`,
  );
  const globals = manifest.artifacts.find((a) => a.name === 'globals');
  const globalsFile = globals ? path.join(work, 'globals.sql') : undefined;
  if (globals) await downloadArtifact(ctx, globals, globalsFile!, identities);
  return { dumpFile, postFile, globalsFile };
}

/** Stage 5: pg_restore into the destination; any error that is not harmless fails the verification. */
async function restoreStage(
  o: VerifyOptions,
  { plan }: ChosenBackup,
  pgRestore: PgTool,
  dest: Destination,
  files: Downloaded,
  work: string,
  result: VerifyResult,
  ctx: VerifyRun,
): Promise<void> {
  const { log } = ctx;
  log.info(`Restoring into database "${dest.database}" with pg_restore ${pgRestore.version}`);
  const t = performance.now();
  const restoreErrors = plan.dump
    ? await restore(pgRestore, o, dest, files.dumpFile, work, ctx)
    : await restoreSections(
        pgRestore,
        o,
        dest,
        { preFile: files.dumpFile, postFile: files.postFile!, data: plan.data },
        ctx,
      );
  result.timings.restoreSeconds = (performance.now() - t) / 1000;
  if (restoreErrors.length) throw new VerificationFailed(summarizeRestoreErrors(restoreErrors));
  log.info(
    `Restored into database "${dest.database}" with ${o.jobs} job(s) in ${formatSeconds(result.timings.restoreSeconds)}`,
  );
}

/** Stage 6: row counts against the manifest, then the user's checks (and recover mode's row copy); the verdict. */
async function compareStage(
  o: VerifyOptions,
  manifest: Manifest,
  database: string,
  result: VerifyResult,
  { log }: VerifyRun,
): Promise<void> {
  log.info(
    `Checking database "${database}": row counts against the manifest${o.checksSql ? `, then ${o.checksSql.path}` : ''}`,
  );
  const t = performance.now();
  const db = await connectPg(o.target, 'target-url', database);
  try {
    await db.query('ANALYZE');
    await compareCounts(db, manifest, o.tables, result);
    if (o.checksSql) await runChecks(db, o.checksSql, result);
    if (o.afterRestore && !result.mismatches.length && !result.checkFailures.length) await o.afterRestore(db, database);
  } finally {
    await db.end().catch(() => undefined);
  }
  result.timings.checksSeconds = (performance.now() - t) / 1000;
  if (result.mismatches.length) {
    result.failures.push(
      `${result.mismatches.length} table(s) differ from the manifest: ${result.mismatches
        .slice(0, 10)
        .map((m) => `${m.table} (manifest ${m.expected ?? 'absent'}, restored ${m.actual ?? 'missing'})`)
        .join(', ')}`,
    );
  }
  for (const c of result.checkFailures) {
    result.failures.push(
      `check failed: ${c.statement}${c.error ? ` (${c.error})` : ''}${c.rows.length ? `: ${JSON.stringify(c.rows.slice(0, 10))}` : ''}`,
    );
  }
  result.status = result.failures.length ? 'failed' : 'passed';
}

/** Restore mode: the typed confirmation, and no table of the target overwritten unless `clean`. */
async function guardRestoreTarget(target: pg.Client, o: VerifyOptions): Promise<void> {
  const name = o.target.database;
  // A new database leaves the target untouched: nothing to confirm.
  if (o.strategy === 'new-database') return;
  if (o.confirm !== name) {
    throw new UserError(
      `Input \`confirm\`: restore mode overwrites database "${name}"; set \`confirm\` to exactly \`${name}\` to go ahead${o.confirm ? ` (it is "${o.confirm}")` : ''}.`,
    );
  }
  // swap restores into an empty new database.
  if (o.strategy !== 'in-place') return;
  const rows = await userTables(target, { partitioned: true });
  const clash = o.tables.length
    ? rows.filter((r) => o.tables.some((t) => t.schema === r.schema && t.name === r.name))
    : rows;
  if (clash.length && !o.clean) {
    const shown =
      clash
        .slice(0, 5)
        .map((r) => `${r.schema}.${r.name}`)
        .join(', ') + (clash.length > 5 ? ', ...' : '');
    throw new UserError(
      `Input \`clean\`: database "${name}" already has ${clash.length} of the tables to restore (${shown}). Restore into an empty database, or set \`clean: true\` to drop and recreate them.`,
    );
  }
}

async function downloadArtifact(
  { store, processes, cancel }: VerifyRun,
  artifact: Manifest['artifacts'][number],
  file: string,
  identities: string[],
): Promise<void> {
  // Checksummed while it streams into the file pg_restore reads (the stored copy is never kept): nothing is
  // restored until the checksum is known to be right, and a wrong one leaves no file behind.
  await fetchArtifact(store, artifact, file, identities, processes, cancel).catch((e: unknown) => {
    if (e instanceof ChecksumMismatch || e instanceof DecodeFailed) throw new VerificationFailed(e.message);
    throw e;
  });
}

/**
 * What a multi-artifact backup cannot do yet, refused before any download or database: a `tables` restore (and
 * recover mode, which restores tables) and an in-place `clean` restore (dropping the existing objects needs the
 * whole archive's order, which spans the sections).
 */
function refuseForMultiArtifact(o: VerifyOptions, backupId: string): void {
  const what = `Backup ${backupId} is a multi-artifact backup (written with \`jobs\` > 1)`;
  if (o.mode === 'recover')
    throw new UserError(
      `Input \`mode\`: ${what}, and recover mode does not support those yet. Recover from a backup written with \`jobs: 1\`, or restore this one whole with \`mode: restore\` and \`restore-strategy: new-database\` and copy the rows from there.`,
    );
  if (o.tables.length)
    throw new UserError(
      `Input \`tables\`: ${what}, and restoring some of its tables is not supported yet. Clear \`tables\` to restore it whole (\`restore-strategy: new-database\` leaves the target untouched), or use a backup written with \`jobs: 1\`.`,
    );
  if (o.mode === 'restore' && o.strategy === 'in-place' && o.clean)
    throw new UserError(
      `Input \`clean\`: ${what}, and an in-place restore over existing tables is not supported for those. Use \`restore-strategy: swap\` (the default), which restores into a new database and swaps it in.`,
    );
}

/**
 * A multi-artifact restore: pre-data, then every data artifact streamed from S3 through its checksum, age and
 * `zstd -d` into its own pg_restore reading stdin (up to `jobs` at once, no local copy), then post-data with
 * `pg_restore -j`. A checksum that fails once a stream has ended is a VerificationFailed: the caller drops the
 * scratch (or restoring) database.
 */
async function restoreSections(
  tool: PgTool,
  o: VerifyOptions,
  dest: Destination,
  files: { preFile: string; postFile: string; data: Artifact[] },
  { store, processes, cancel }: VerifyRun,
): Promise<string[]> {
  const env = libpqEnv(o.target);
  const base = [...RESTORE_FLAGS, '--no-password', `--dbname=${urlWithoutPassword(o.target, dest.database)}`];
  const errors = restoreErrorsOf(await processes.run(tool.path, [...base, files.preFile], { env }, cancel));
  if (errors.length) return errors;
  const streamed = await mapLimit(files.data, Math.max(1, o.jobs), async (a) => {
    const child = processes.spawn(tool.path, base, { env, stdio: ['pipe', 'ignore', 'pipe'] }, cancel);
    child.stdin!.on('error', () => undefined);
    const watch = new ChildWatch('pg_restore', child, 200);
    let fetchError: unknown;
    await streamArtifact(store, a, { stdin: child }, o.ageIdentities, processes, cancel).catch((e: unknown) => {
      fetchError = e;
      child.kill('SIGTERM');
    });
    const { code } = await watch.exited;
    const errors = restoreErrorsOf({ code, stderr: watch.stderrTail() });
    // A pg_restore that stopped early breaks zstd's pipe: its own errors are the cause, unless the bytes were bad.
    if (fetchError instanceof ChecksumMismatch || (fetchError !== undefined && errors.length === 0))
      return { fetchError, errors };
    return { errors };
  });
  const failed = streamed.find((r) => r.fetchError !== undefined)?.fetchError;
  if (failed instanceof ChecksumMismatch || failed instanceof DecodeFailed)
    throw new VerificationFailed(failed.message);
  if (failed !== undefined) throw failed;
  errors.push(...streamed.flatMap((r) => r.errors));
  if (errors.length) return errors;
  return restoreErrorsOf(
    await processes.run(tool.path, [...base, `--jobs=${o.jobs}`, files.postFile], { env }, cancel),
  );
}

/** pg_restore's own errors, less the harmless ones; a failure without any is reported by its exit code. */
function restoreErrorsOf(out: { code: number | null; stderr: string }): string[] {
  const errors = out.stderr
    .split('\n')
    .filter((l) => l.startsWith('pg_restore: error:'))
    .filter((l) => !HARMLESS_RESTORE_ERRORS.some((re) => re.test(l)));
  if (out.code !== 0 && errors.length === 0 && !/errors ignored on restore/.test(out.stderr)) {
    errors.push(`pg_restore exited with code ${out.code}: ${out.stderr.trim().split('\n').slice(-5).join('\n')}`);
  }
  return errors;
}

const RECOVER_SKIPS = ['FK CONSTRAINT', 'TRIGGER', 'POLICY', 'ROW SECURITY'];

async function restore(
  tool: PgTool,
  o: VerifyOptions,
  dest: Destination,
  file: string,
  work: string,
  { processes, files, cancel }: VerifyRun,
): Promise<string[]> {
  const env = libpqEnv(o.target);
  const args = [
    ...RESTORE_FLAGS,
    '--no-password',
    // One transaction cannot be shared by parallel jobs.
    dest.singleTransaction ? '--single-transaction' : `--jobs=${o.jobs}`,
    `--dbname=${urlWithoutPassword(o.target, dest.database)}`,
  ];
  if (dest.strategy === 'in-place' && o.clean) args.push('--clean', '--if-exists');
  if (o.tables.length) {
    const toc = await processes.run(tool.path, ['-l', file], {}, cancel);
    const post = await processes.run(tool.path, ['--section=post-data', '-f', '-', file], {}, cancel);
    // A recovery's scratch copy holds rows only: foreign keys to tables (and triggers calling functions) not
    // restored would fail there.
    const lines = selectTables(parseToc(toc.stdout), o.tables, indexOwners(post.stdout)).filter(
      (l) => o.mode !== 'recover' || !RECOVER_SKIPS.includes(parseToc(l)[0]?.type ?? ''),
    );
    const missing = o.tables.filter(
      (t) => !parseToc(toc.stdout).some((e) => e.type === 'TABLE' && e.schema === t.schema && e.tag === t.name),
    );
    if (missing.length) {
      throw new UserError(
        `Input \`tables\`: the backup has no table ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}. Name tables schema-qualified as they were dumped, e.g. \`public.visits\`.`,
      );
    }
    const listFile = path.join(work, 'tables.list');
    files.writeText(listFile, lines.join('\n') + '\n');
    args.push(`--use-list=${listFile}`);
  }
  args.push(file);
  return restoreErrorsOf(await processes.run(tool.path, args, { env }, cancel));
}

/** Every table's exact row count against the manifest (also used on a Neon branch, src/core/neon-verify.ts). */
export async function compareCounts(
  db: pg.Client,
  manifest: Manifest,
  only: QualifiedName[],
  result: Pick<VerifyResult, 'mismatches' | 'tablesChecked' | 'rowsChecked' | 'extraTables'>,
): Promise<void> {
  const restored = await userTables(db);
  const has = new Set(restored.map((r) => `${r.schema}.${r.name}`));
  const expected = manifest.tables.filter(
    (t) => only.length === 0 || only.some((q) => q.schema === t.schema && q.name === t.name),
  );
  for (const t of expected) {
    const name = `${t.schema}.${t.name}`;
    if (!has.has(name)) {
      result.mismatches.push({ table: name, expected: t.rows, actual: null });
      continue;
    }
    const n = await exactRowCount(db, t);
    result.tablesChecked++;
    result.rowsChecked += n;
    if (n !== t.rows) result.mismatches.push({ table: name, expected: t.rows, actual: n });
  }
  if (only.length === 0) {
    const inManifest = new Set(manifest.tables.map((t) => `${t.schema}.${t.name}`));
    result.extraTables = [...has].filter((t) => !inManifest.has(t)).sort();
  }
}

export async function runChecks(
  db: pg.Client,
  checks: { path: string; text: string },
  result: Pick<VerifyResult, 'checkFailures'>,
): Promise<void> {
  for (const statement of splitSql(checks.text)) {
    const label = statementLabel(statement);
    try {
      const res = await db.query(statement);
      const rows = res.rows as Record<string, unknown>[];
      const first = rows[0] ? Object.values(rows[0])[0] : undefined;
      const passed = rows.length === 0 || (rows.length === 1 && first === true);
      if (!passed) result.checkFailures.push({ statement: label, rows: rows.slice(0, 10) });
    } catch (e) {
      result.checkFailures.push({ statement: label, error: (e as Error).message, rows: [] });
    }
  }
}

async function writeRecord(
  store: ObjectStore,
  entry: BackupEntry,
  r: VerifyResult,
  o: VerifyOptions,
  at: Date,
  server: string,
  pgRestore: string,
  github: Manifest['github'],
): Promise<string> {
  const prefix = entry.manifestKey!.slice(0, -'manifest.json'.length);
  const key = `${prefix}verifications/${compactUtc(at)}-${randomBytes(2).toString('hex')}.json`;
  const record: VerificationRecord = {
    formatVersion: 1,
    backupId: entry.backupId,
    status: r.status,
    mode: o.mode === 'restore' ? 'restore' : 'verify',
    source: 's3',
    verifiedAt: at.toISOString(),
    rtoSeconds: round(r.rtoSeconds),
    rpoSeconds: round(r.rpoSeconds),
    timings: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, round(v)])),
    tablesChecked: r.tablesChecked,
    rowsChecked: r.rowsChecked,
    failures: r.failures,
    ...(r.rolesCreated.length ? { rolesCreated: r.rolesCreated } : {}),
    versions: { server: server.split(' ')[0], pgRestore },
    github,
  };
  // Locked like its backup (S3 Object Lock), read from the manifest.
  await store.putJson(key, record, undefined, recordLock(r.manifest, new Date()));
  return key;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export function verifySummary(r: VerifyResult): string {
  const verdict = r.status === 'passed' ? '✅ Backup verified' : '❌ Verification failed';
  const lines = [
    `## ${verdict}: \`${r.backupId}\``,
    '',
    `**RTO ${formatSeconds(r.rtoSeconds)}** (download ${formatSeconds(r.timings.downloadSeconds ?? 0)}, restore ${formatSeconds(r.timings.restoreSeconds ?? 0)}, checks ${formatSeconds(r.timings.checksSeconds ?? 0)}) · **RPO ${formatSeconds(r.rpoSeconds)}** (age of the backup's snapshot)`,
    '',
    `${r.tablesChecked} tables and ${r.rowsChecked.toLocaleString('en-US')} rows checked against the manifest.`,
    '',
  ];
  if (r.rolesCreated.length) {
    const dropped = r.rolesDropped
      ? ` (dropped again: ${r.rolesDropped.length ? r.rolesDropped.map((x) => `\`${x}\``).join(', ') : 'none'})`
      : '';
    lines.push(
      `Roles created on the target as NOLOGIN without password, because the backup refers to them: ${r.rolesCreated.map((x) => `\`${x}\``).join(', ')}${dropped}.`,
      '',
    );
  }
  if (r.destination?.notes.length) lines.push(...r.destination.notes, '');
  if (r.failures.length) lines.push('### Failures', '', ...r.failures.map((f) => `- ${f.replace(/\n/g, ' ')}`), '');
  if (r.mismatches.length) {
    lines.push('| Table | Manifest rows | Restored rows |', '|---|---|---|');
    for (const m of r.mismatches)
      lines.push(`| \`${m.table}\` | ${m.expected ?? 'absent'} | ${m.actual ?? 'missing'} |`);
    lines.push('');
  }
  if (r.checkFailures.length) {
    lines.push('| Failing check | Rows (up to 10) |', '|---|---|');
    for (const c of r.checkFailures)
      lines.push(
        `| \`${c.statement.replace(/\|/g, '\\|')}\` | ${c.error ?? JSON.stringify(c.rows).replace(/\|/g, '\\|')} |`,
      );
    lines.push('');
  }
  if (r.extraTables.length)
    lines.push(
      `Tables not in the manifest (reported, not failed): ${r.extraTables.map((t) => `\`${t}\``).join(', ')}`,
      '',
    );
  return lines.join('\n');
}
