import type pg from 'pg';
import { encryptChunks } from '../lib/age.js';
import { Digest, digested } from '../lib/digest.js';
import { inputError, isReported, UserError } from '../lib/errors.js';
import { backupPrefix, dumpFileName, MANIFEST_NAME, newBackupId } from '../lib/keys.js';
import { formatBytes, formatSeconds } from '../lib/log.js';
import { githubContext, type Artifact, type Compression, type Manifest, type TableCount } from '../lib/manifest.js';
import { dataStreamArgs, partitionTables, POST_DATA, PRE_DATA, sectionFileName } from '../lib/parallel-plan.js';
import { retainUntil, type ObjectLockSetting, type ObjectLockWrite } from '../lib/object-lock.js';
import { matchesTable, schemaPattern, tablePattern } from '../lib/pg-pattern.js';
import { connectPg, quoteIdent } from '../lib/pg-client.js';
import {
  exactRowCount,
  largeObjectCount,
  serverVersion as readServerVersion,
  userSequences,
  userTables,
} from '../lib/pg-catalog.js';
import { libpqEnv, urlWithoutPassword, type PgTarget } from '../lib/pg-url.js';
import { findPgTool, installedPgTools, type PgTool } from '../lib/pgtools.js';
import { Cancellation, type Undo } from '../lib/cancel.js';
import { ChildFailure, type ChildWatch, type Processes } from '../lib/process.js';
import { operation, type Operation, type OperationDeps } from './operation.js';
import { missingProgram, spawnDumpPipeline } from '../lib/dump-pipeline.js';
import { currentWalLsn, snapshotLsnFields } from '../lib/wal-lsn.js';
import type { ObjectStore, UploadOptions } from '../lib/s3.js';
import { TOOL } from '../version.js';
import { RECOVERY_NAME, recoveryMarkdown } from './recovery.js';
import { captureGlobals, globalsFileName, type GlobalsResult } from './globals.js';
import { CompletionUnknown, writeManifestChecked } from './completion.js';

export interface BackupOptions {
  source: PgTarget;
  /** The stream name under the prefix; usually the database name. */
  database: string;
  prefix: string;
  kind: string;
  compression: Compression;
  compressionLevel?: number;
  ageRecipients: string[];
  excludeTableData: string[];
  schemas: string[];
  lockWaitTimeoutSeconds: number;
  pgDumpPath?: string;
  storageClass: string;
  sse?: UploadOptions['sse'];
  /** Undefined: chosen from the database size by `autoPartSizeMiB`. */
  partSizeMiB?: number;
  /** The `s3-endpoint`, for the commands in RECOVERY.md. */
  s3Endpoint?: string;
  /** Also store `pg_dumpall --globals-only --no-role-passwords` as the `globals` artifact. */
  globals: boolean;
  /** S3 Object Lock: every object of the backup retained until its start + `days` (the bucket is checked first). */
  objectLock?: ObjectLockSetting;
  /** Parallel data streams; 1 (the default): one dump artifact. See src/lib/parallel-plan.ts. */
  jobs?: number;
}

const MiB = 1024 * 1024;

/**
 * S3 allows 10,000 parts. Small parts keep memory low and the link busy; a dump is rarely larger than the database
 * on disk, so twice its size over 9,000 parts leaves room for the dumps that are (data TOASTed by Postgres).
 */
export function autoPartSizeMiB(databaseBytes: number): number {
  return Math.min(512, Math.max(8, Math.ceil((2 * databaseBytes) / 9000 / MiB)));
}

export type BackupDeps = OperationDeps;

export interface BackupResult {
  manifest: Manifest;
  manifestKey: string;
  dumpKey: string;
  bytes: number;
  sha256: string;
  durationSeconds: number;
  rows: number;
  /** S3 requests the SDK sent again (throttling, 5xx, resets). */
  retries: number;
  /** How the manifest's completion was confirmed: its own reply, or read back after the reply was lost. */
  manifestConfirmedBy: 'reply' | 'read-back';
}

/** Upload parallelism: bounded memory (queueSize x partSize) while keeping the link busy. */
const UPLOAD_QUEUE = 4;

/** What every stage of a backup shares: the store, the log, the run, its clock and ports. */
type BackupRun = Operation;

/** Where one backup goes: its id, prefix and keys (pure: from the options and the start time). */
interface BackupLayout {
  backupId: string;
  started: Date;
  prefix: string;
  dumpKey: string;
  globalsKey: string;
  encrypted: boolean;
  lock?: ObjectLockWrite;
  tags: Record<string, string>;
}

/** The source database inside the exported snapshot: the connection that holds it open is owned here. */
interface OpenSnapshot {
  client: pg.Client;
  serverVersion: string;
  pgDump: PgTool;
  snapshot: string;
  snapshotAt: Date;
  snapshotLsn: ReturnType<typeof snapshotLsnFields> | Record<string, never>;
  tables: Awaited<ReturnType<typeof listTables>>;
  databaseBytes: number;
  close(): Promise<void>;
}

/** What the dump stage stored: every stream's object, and the exact row counts of the same snapshot. */
interface Dumped {
  streams: StreamResult[];
  counted: TableCount[];
  largeObjects: number;
  level: number;
  /** The cancel's deletion of the dump: dismissed once the manifest is written. */
  undo: Undo;
}

/**
 * One backup, in stages: connect & snapshot, dump (the pg_dump pipelines and the exact counts alongside), globals,
 * seal (RECOVERY.md, then the manifest, last). Until the manifest is written, any failure or cancel deletes what
 * reached the store; the snapshot stage owns the source connection.
 */
export async function runBackup(o: BackupOptions, deps: BackupDeps): Promise<BackupResult> {
  const ctx: BackupRun = operation(deps);
  const t0 = performance.now();
  const layout = backupLayout(o, ctx.now());
  const source = await openSnapshot(o, layout, ctx);
  // Keys of this backup that may have reached the store: deleted on failure, never once a manifest may exist.
  const keys: string[] = o.globals ? [layout.globalsKey] : [];
  // The roles are not part of the snapshot, so pg_dumpall runs beside the dump instead of after it. It never
  // rejects (a failure is a note in the manifest), and it is awaited before anything is deleted, so its object
  // cannot land after the clean-up.
  const globalsRun = globalsStage(o, layout, source.pgDump, ctx);
  globalsRun.catch(() => undefined); // a bug's rejection is surfaced where it is awaited, not as an unhandled one
  try {
    const dumped = await dumpStage(o, layout, source, keys, ctx);
    const globals = await globalsRun;
    const manifest = backupManifest(o, layout, source, dumped, globals, ctx);
    const sealed = await sealStage(o, layout, manifest, ctx);
    dumped.undo.dismiss();
    const durationSeconds = (performance.now() - t0) / 1000;
    const bytes = dumped.streams.reduce((n, r) => n + r.bytes, 0);
    ctx.log.info(
      `Stored ${formatBytes(bytes)} in ${formatSeconds(durationSeconds)} (${dumped.counted.length} tables, ${manifest.totalRows} rows): s3://${ctx.store.bucket}/${sealed.manifestKey}`,
    );
    return {
      manifest,
      manifestKey: sealed.manifestKey,
      // With jobs > 1: the first artifact's key and SHA-256 (pre-data), and the bytes of every section.
      dumpKey: dumped.streams[0]!.key,
      bytes,
      sha256: dumped.streams[0]!.sha256,
      durationSeconds,
      rows: manifest.totalRows,
      retries: ctx.store.retries,
      manifestConfirmedBy: sealed.manifestConfirmedBy,
    };
  } catch (e) {
    await globalsRun.catch(() => undefined); // the dump's error is the one to report
    // Never delete the dump while a manifest naming it may exist.
    if (keys.length && !(e instanceof CompletionUnknown)) {
      // Best effort: a partial dump object is harmless without a manifest, but need not linger.
      await ctx.store.deleteKeys([...keys, layout.prefix + RECOVERY_NAME]).catch(() => undefined);
    }
    throw e;
  } finally {
    await source.close();
  }
}

function backupLayout(o: BackupOptions, started: Date): BackupLayout {
  const backupId = newBackupId(started);
  const prefix = backupPrefix(o.prefix, o.database, backupId);
  const encrypted = o.ageRecipients.length > 0;
  return {
    backupId,
    started,
    prefix,
    dumpKey: prefix + dumpFileName(o.compression, encrypted),
    globalsKey: prefix + globalsFileName(encrypted),
    encrypted,
    lock: o.objectLock && retainUntil(o.objectLock, started),
    tags: { 'backup-id': backupId, kind: o.kind, database: o.database },
  };
}

/**
 * Stage 1: connect, pick the pg_dump for the server, and export the snapshot every pg_dump of this backup uses
 * (rows are counted in the same one, so the manifest's counts are exact). The transaction stays open until
 * `close`, after the dump stage has committed it.
 */
async function openSnapshot(o: BackupOptions, layout: BackupLayout, { log, now }: BackupRun): Promise<OpenSnapshot> {
  // The search for pg_dump (a `--version` of every copy) overlaps the connection: it needs no server version.
  const installed = o.pgDumpPath ? undefined : installedPgTools('pg_dump');
  installed?.catch(() => undefined); // awaited below, unless the connection fails first
  const client = await connectPg(o.source, 'database-url');
  const close = () => client.end().catch(() => undefined);
  try {
    const { version: serverVersion, major } = await readServerVersion(client);
    const pgDump = await findPgTool(
      'pg_dump',
      major,
      serverVersion,
      o.pgDumpPath ? { input: 'pg-dump-path', path: o.pgDumpPath } : undefined,
      installed,
    );
    const where = `${o.source.host}:${o.source.port}/${o.source.database}`;
    log.info(
      `Backing up ${where} (PostgreSQL ${serverVersion}) with ${pgDump.path} ${pgDump.version} as ${layout.backupId}`,
    );
    await checkSchemaPatterns(client, o);
    const lsnBefore = await currentWalLsn(client);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    // The exact counts run in this transaction beside pg_dump: without parallel workers, which would take CPU from
    // the dump (three processes scanning one index for about twice the CPU of one) and worker slots from the server.
    await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
    const snapshot = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
    const snapshotAt = now();
    const snapshotLsn = lsnBefore ? snapshotLsnFields(lsnBefore, (await currentWalLsn(client))!) : {};
    const tables = await listTables(client, o);
    const databaseBytes = Number(
      (await client.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]!.n,
    );
    return { client, serverVersion, pgDump, snapshot, snapshotAt, snapshotLsn, tables, databaseBytes, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Stage 2: the pg_dump pipelines (one, or pre-data, the data streams together, post-data) with the exact row
 * counts alongside; then the snapshot's transaction is committed. `keys` receives every key before its upload.
 */
async function dumpStage(
  o: BackupOptions,
  layout: BackupLayout,
  source: OpenSnapshot,
  keys: string[],
  { store, log, cancel, processes }: BackupRun,
): Promise<Dumped> {
  const { client, tables, snapshot } = source;
  const partSizeMiB = o.partSizeMiB ?? autoPartSizeMiB(source.databaseBytes);
  const level = o.compressionLevel ?? (o.compression === 'zstd' ? 1 : o.compression === 'gzip' ? 6 : 0);
  const common = [
    '--format=custom',
    `--compress=${o.compression === 'gzip' ? level : 0}`,
    `--snapshot=${snapshot}`,
    `--lock-wait-timeout=${Math.round(o.lockWaitTimeoutSeconds * 1000)}`,
    '--no-password',
    ...o.schemas.map((s) => `--schema=${s}`),
    ...o.excludeTableData.map((t) => `--exclude-table-data=${t}`),
    `--dbname=${urlWithoutPassword(o.source)}`,
  ];
  const jobs = o.jobs ?? 1;
  const plan: StreamPlan[] =
    jobs > 1
      ? await parallelPlan(client, o, tables, jobs, common, layout.prefix, layout.encrypted)
      : [{ name: 'dump', key: layout.dumpKey, args: common }];
  if (jobs > 1)
    log.info(
      `Dumping with ${plan.length - 2} data stream(s) (jobs: ${jobs}) in snapshot ${snapshot}: ${plan.map((p) => p.name).join(', ')}`,
    );
  keys.push(...plan.map((p) => p.key));
  // Until the manifest is written, a cancel deletes whatever part of the dump reached the store.
  const undo = cancel.onCancel(`deleted the partial dump under s3://${store.bucket}/${layout.prefix}`, async () => {
    await store.deleteKeys(keys);
  });
  const stream = (p: StreamPlan) =>
    dumpStream(p, {
      store,
      pgDumpPath: source.pgDump.path,
      env: libpqEnv(o.source),
      o,
      level,
      encrypted: layout.encrypted,
      cancel,
      processes,
      upload: {
        partSizeBytes: partSizeMiB * MiB,
        // Parallel streams share the in-flight budget (at least 2 parts each, to keep every link busy).
        queueSize: jobs > 1 ? Math.max(2, Math.floor(UPLOAD_QUEUE / Math.max(1, plan.length - 2))) : UPLOAD_QUEUE,
        storageClass: o.storageClass,
        sse: o.sse,
        tags: layout.tags,
        cancel,
        lock: layout.lock,
      },
    });
  let streams: StreamResult[];
  let counts: SnapshotCounts;
  if (jobs <= 1) [streams, counts] = await alongside([stream(plan[0]!)], client, tables);
  else {
    // Section order: pre-data first (it is small), the data streams together, post-data last.
    const pre = await stream(plan[0]!).promise;
    const [data, c] = await alongside(plan.slice(1, -1).map(stream), client, tables);
    const post = await stream(plan.at(-1)!).promise;
    streams = [pre, ...data, post];
    counts = c;
  }
  for (const r of streams.filter((r) => r.confirmedBy === 'head'))
    log.warn(
      `The reply completing the upload of ${r.key} was lost, but the object is stored with exactly the ${r.bytes} bytes sent: accepted (the SHA-256 was computed locally).`,
    );
  await client.query('COMMIT');
  return { streams, counted: counts.tables, largeObjects: counts.largeObjects, level, undo };
}

/** Stage 3: `pg_dumpall --globals-only --no-role-passwords` as the `globals` artifact, when asked for. */
async function globalsStage(
  o: BackupOptions,
  layout: BackupLayout,
  pgDump: PgTool,
  { store, log, cancel, processes }: BackupRun,
): Promise<GlobalsResult> {
  if (!o.globals) return { note: { status: 'off' } };
  return captureGlobals(
    {
      source: o.source,
      pgDumpPath: pgDump.path,
      key: layout.globalsKey,
      recipients: o.ageRecipients,
      upload: { storageClass: o.storageClass, sse: o.sse, tags: layout.tags, lock: layout.lock },
    },
    { store, log, cancel, processes },
  );
}

/** The manifest (pure): what was stored, from which snapshot, with the exact counts. See docs/FORMAT.md. */
function backupManifest(
  o: BackupOptions,
  layout: BackupLayout,
  source: OpenSnapshot,
  { streams, counted, largeObjects, level }: Dumped,
  globals: GlobalsResult,
  { now, run }: BackupRun,
): Manifest {
  const lock = layout.lock;
  return {
    formatVersion: 1,
    backupId: layout.backupId,
    kind: o.kind,
    startedAt: layout.started.toISOString(),
    snapshotAt: source.snapshotAt.toISOString(),
    ...source.snapshotLsn,
    completedAt: now().toISOString(),
    source: {
      host: o.source.host,
      port: o.source.port,
      database: o.source.database,
      serverVersion: source.serverVersion,
      pgDumpVersion: source.pgDump.version,
    },
    database: o.database,
    artifacts: [
      ...streams.map((r): Artifact => ({
        name: r.name,
        key: r.key,
        bytes: r.bytes,
        sha256: r.sha256,
        format: 'custom',
        ...(r.section ? { section: r.section } : {}),
        compression: o.compression,
        ...(o.compression === 'none' ? {} : { compressionLevel: level }),
        ...(r.uncompressedBytes === undefined ? {} : { uncompressedBytes: r.uncompressedBytes }),
        encryption: layout.encrypted ? { scheme: 'age', recipients: o.ageRecipients } : null,
        confirmedBy: r.confirmedBy,
      })),
      ...(globals.artifact ? [globals.artifact] : []),
    ],
    globals: globals.note,
    ...(lock
      ? { objectLock: { mode: lock.mode, days: o.objectLock!.days, retainUntil: lock.retainUntil.toISOString() } }
      : {}),
    tables: counted,
    largeObjects,
    totalRows: counted.reduce((s, t) => s + t.rows, 0),
    github: githubContext(run),
    tool: TOOL,
  };
}

/** Stage 4: RECOVERY.md, then the manifest, written last: a prefix without it is an incomplete backup. */
async function sealStage(
  o: BackupOptions,
  layout: BackupLayout,
  manifest: Manifest,
  { store, log, cancel }: BackupRun,
): Promise<{ manifestKey: string; manifestConfirmedBy: BackupResult['manifestConfirmedBy'] }> {
  const manifestKey = layout.prefix + MANIFEST_NAME;
  await store.putText(
    layout.prefix + RECOVERY_NAME,
    recoveryMarkdown(manifest, { bucket: store.bucket, endpoint: o.s3Endpoint }),
    'text/markdown; charset=utf-8',
    o.sse,
    layout.lock,
  );
  // Nothing restores or counts a backup without its manifest. Never written after a cancel.
  cancel.throwIfCancelled();
  const manifestConfirmedBy = await writeManifestChecked(store, manifestKey, manifest, o.sse, log, layout.lock);
  return { manifestKey, manifestConfirmedBy };
}

interface StreamPlan {
  name: string;
  key: string;
  args: string[];
  section?: Artifact['section'];
}

interface StreamResult {
  name: string;
  key: string;
  section?: Artifact['section'];
  bytes: number;
  sha256: string;
  uncompressedBytes?: number;
  confirmedBy: 'reply' | 'head';
}

interface RunningStream {
  promise: Promise<StreamResult>;
  /** Stops the stream's children because of another stage's failure, which is then the stream's error too. */
  stop: (cause: Error) => void;
}

interface StreamContext {
  store: ObjectStore;
  pgDumpPath: string;
  env: NodeJS.ProcessEnv;
  o: BackupOptions;
  level: number;
  encrypted: boolean;
  cancel: Cancellation;
  processes: Processes;
  upload: UploadOptions & { partSizeBytes: number; queueSize: number };
}

/**
 * One pg_dump stream into one object: pg_dump | zstd (an OS pipe) | age | SHA-256 | multipart upload. A failure
 * stops its children and aborts its upload (uploadStream deletes what it sent); the promise then rejects.
 */
function dumpStream(p: StreamPlan, c: StreamContext): RunningStream {
  let watches: ChildWatch[] = [];
  let stoppedBy: Error | undefined;
  const killChildren = () => {
    for (const w of watches.filter((w) => w.child.exitCode === null && w.child.signalCode === null))
      w.child.kill('SIGTERM');
  };
  const stop = (cause: Error) => {
    stoppedBy ??= cause;
    killChildren();
  };
  const promise = (async (): Promise<StreamResult> => {
    const {
      watches: ws,
      output,
      summary,
    } = await spawnDumpPipeline(c.pgDumpPath, p.args, c.env, c.o.compression, c.level, c.processes, c.cancel);
    watches = ws;
    if (stoppedBy) stop(stoppedBy);
    let received = 0;
    const counted = (async function* () {
      for await (const chunk of output) {
        received += chunk.length;
        yield chunk;
      }
    })();
    const sealed = c.encrypted ? encryptChunks(counted, c.o.ageRecipients) : undefined;
    const digest = new Digest();
    // The end of the source holds back the end of the upload until every child has exited 0: a dump that failed
    // at the end must fail the upload, never complete it.
    // It also holds it back when fewer bytes reached us than zstd says it wrote: nothing between zstd and the
    // store may lose a byte unnoticed, whatever the cause.
    const source = digested(sealed ?? counted, digest, async () => {
      await Promise.all(watches.map((w) => w.succeeded()));
      const wrote = summary()?.wrote;
      if (wrote !== undefined && wrote !== received)
        throw new Error(
          `zstd wrote ${wrote} bytes of ${p.name} but ${received} reached the upload, which was aborted (no manifest is written). This is a bug of ours: please report it. Re-running the backup is safe.`,
        );
    });
    const body = {
      [Symbol.asyncIterator]: () => source.chunks,
      destroy: () => output.destroy(),
    };
    // When the upload fails first, the children are stopped, and their SIGTERM must not hide the failure. When
    // the source failed first (pg_dump's exit, lost bytes), that failure is the one to report (pickFailure).
    const uploading = c.store.uploadStream(p.key, body, c.upload).catch((e: Error) => {
      if (source.failed()) killChildren();
      else stop(e);
      throw e;
    });
    await uploading.catch(() => undefined);
    source.stop();
    const settled = await Promise.allSettled([source.finished, uploading]);
    const failure = stoppedBy ?? pickFailure(settled, watches);
    if (failure) {
      body.destroy();
      throw failure;
    }
    const uploaded = (settled[1] as PromiseFulfilledResult<Awaited<typeof uploading>>).value;
    return {
      name: p.name,
      key: p.key,
      section: p.section,
      bytes: digest.bytes,
      sha256: digest.sha256(),
      uncompressedBytes: summary()?.read,
      confirmedBy: uploaded.confirmedBy,
    };
  })();
  promise.catch(() => undefined);
  return { promise, stop };
}

/**
 * Runs the streams and the exact row counts (inside the exporting transaction, which stays open meanwhile)
 * together; the first failure stops every other stream and is the one reported.
 */
async function alongside(
  running: RunningStream[],
  client: pg.Client,
  tables: { schema: string; name: string; excluded: boolean }[],
): Promise<[StreamResult[], SnapshotCounts]> {
  let first: Error | undefined;
  const stopAll = (e: Error) => {
    first ??= e;
    for (const r of running) r.stop(e);
  };
  const counting = exactCounts(client, tables).catch((e: Error) => {
    stopAll(e);
    throw e;
  });
  const results = running.map((r) =>
    r.promise.catch((e: Error) => {
      stopAll(e);
      throw e;
    }),
  );
  const settled = await Promise.allSettled([...results, counting]);
  if (first) throw first;
  const values = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value);
  return [values.slice(0, -1) as StreamResult[], values.at(-1) as SnapshotCounts];
}

/**
 * `jobs` > 1: pre-data, the data streams (the tables split by size; large objects and the sequences' values in
 * the first), post-data. Every pg_dump uses the one exported snapshot.
 */
async function parallelPlan(
  client: pg.Client,
  o: BackupOptions,
  tables: { schema: string; name: string; excluded: boolean }[],
  jobs: number,
  common: string[],
  prefix: string,
  encrypted: boolean,
): Promise<StreamPlan[]> {
  // As pg_dump -j's leader does: the exporting transaction holds every table's ACCESS SHARE lock until the last
  // stream is done, so that no DDL slips in between the sections (each pg_dump locks only what it dumps).
  if (tables.length) {
    const before = (await client.query<{ v: string }>("SELECT current_setting('lock_timeout') AS v")).rows[0]!.v;
    await client.query(`SET LOCAL lock_timeout = ${Math.round(o.lockWaitTimeoutSeconds * 1000)}`);
    try {
      await client.query(
        `LOCK TABLE ${tables.map((t) => `ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`).join(', ')} IN ACCESS SHARE MODE`,
      );
    } catch (e) {
      throw new UserError(
        `Backup failed: the tables could not be locked for the parallel dump within \`lock-wait-timeout\` (${formatSeconds(o.lockWaitTimeoutSeconds)}): ${(e as Error).message}. Something holds an exclusive lock (a migration, VACUUM FULL); retry later or raise \`lock-wait-timeout\`.`,
      );
    }
    await client.query("SELECT set_config('lock_timeout', $1, true)", [before]);
  }
  const sizes = await relationSizes(client);
  const sized = tables
    .filter((t) => !t.excluded)
    .map((t) => ({ schema: t.schema, name: t.name, bytes: sizes.get(JSON.stringify([t.schema, t.name])) ?? 0 }));
  const schemaFilters = o.schemas.map(schemaPattern);
  const sequences = (await userSequences(client)).filter(
    (r) => schemaFilters.length === 0 || schemaFilters.some((re) => re.test(r.schema)),
  );
  // pg_dump leaves large objects out when `--schema` is given; so does a parallel backup.
  const largeObjects = o.schemas.length === 0 && (await largeObjectCount(client)) > 0;
  const streams = partitionTables(sized, jobs, largeObjects || sequences.length > 0);
  const file = (name: string) => prefix + sectionFileName(name, o.compression, encrypted);
  return [
    { name: PRE_DATA, key: file(PRE_DATA), args: [...common, '--section=pre-data'], section: 'pre-data' },
    ...streams.map((s): StreamPlan => ({
      name: s.name,
      key: file(s.name),
      args: [...common, ...dataStreamArgs(s, { largeObjects, sequences })],
      section: 'data',
    })),
    { name: POST_DATA, key: file(POST_DATA), args: [...common, '--section=post-data'], section: 'post-data' },
  ];
}

async function relationSizes(client: pg.Client): Promise<Map<string, number>> {
  const rows = (
    await client.query<{ schema: string; name: string; bytes: string }>(`
      SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid) AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'`)
  ).rows;
  return new Map(rows.map((r) => [JSON.stringify([r.schema, r.name]), Number(r.bytes)]));
}

/** The most telling failure: a child's own error (pg_dump's stderr) beats the upload's "stream destroyed". */
function pickFailure(settled: PromiseSettledResult<unknown>[], watches: ChildWatch[]): Error | undefined {
  const errors = settled
    .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
    .map((s) => s.reason as Error);
  if (errors.length === 0) return undefined;
  const child = errors.find((e) => e instanceof ChildFailure);
  if (child) return new UserError(`Backup failed: ${child.message}`, { cause: child });
  const user = errors.find(isReported);
  if (user) return user;
  const crashed = watches.find((w) => w.child.exitCode !== null && w.child.exitCode !== 0);
  if (crashed)
    return new UserError(
      `Backup failed: ${crashed.name} exited with code ${crashed.child.exitCode}:\n${crashed.stderrTail()}`,
    );
  const spawnError = errors.find((e) => (e as NodeJS.ErrnoException).code === 'ENOENT');
  if (spawnError) return missingProgram(spawnError.message);
  return errors[0];
}

/** pg_dump fails on a `--schema` pattern that matches nothing; say so about the input, before any upload. */
async function checkSchemaPatterns(client: pg.Client, o: BackupOptions): Promise<void> {
  if (o.schemas.length === 0) return;
  const names = (await client.query<{ n: string }>('SELECT nspname AS n FROM pg_namespace')).rows.map((r) => r.n);
  for (const s of o.schemas) {
    const re = schemaPattern(s);
    if (!names.some((n) => re.test(n)))
      throw inputError(
        'schemas',
        `"${s}" matches no schema in database "${o.source.database}"`,
        'List schemas that exist (`\\dn` in psql); unquoted names fold to lower case, `*` and `?` are wildcards.',
      );
  }
}

async function listTables(
  client: pg.Client,
  o: BackupOptions,
): Promise<{ schema: string; name: string; excluded: boolean }[]> {
  const schemaFilters = o.schemas.map(schemaPattern);
  const excluded = o.excludeTableData.map(tablePattern);
  return (await userTables(client))
    .filter((t) => schemaFilters.length === 0 || schemaFilters.some((re) => re.test(t.schema)))
    .map((t) => ({ ...t, excluded: excluded.some((p) => matchesTable(p, t.schema, t.name)) }));
}

/** The exact counts of the snapshot: every table's rows, and the large objects. */
interface SnapshotCounts {
  tables: TableCount[];
  largeObjects: number;
}

async function exactCounts(
  client: pg.Client,
  tables: { schema: string; name: string; excluded: boolean }[],
): Promise<SnapshotCounts> {
  const out: TableCount[] = [];
  for (const t of tables) {
    if (t.excluded) {
      out.push({ schema: t.schema, name: t.name, rows: 0, dataExcluded: true });
      continue;
    }
    out.push({ schema: t.schema, name: t.name, rows: await exactRowCount(client, t) });
  }
  return { tables: out, largeObjects: await largeObjectCount(client) };
}

export function backupSummary(r: BackupResult, bucket: string): string {
  const m = r.manifest;
  const mbps = r.bytes / 1e6 / Math.max(r.durationSeconds, 0.001);
  const enc = m.artifacts[0]!.encryption
    ? `age (${m.artifacts[0]!.encryption.recipients.length} recipient(s))`
    : 'none';
  return [
    `## Backup of \`${m.database}\` completed`,
    '',
    '| | |',
    '|---|---|',
    `| Database | \`${m.source.database}\` on \`${m.source.host}:${m.source.port}\` (PostgreSQL ${m.source.serverVersion}) |`,
    `| Backup id | \`${m.backupId}\` (${m.kind}) |`,
    `| Size | ${formatBytes(r.bytes)} (${m.artifacts[0]!.compression}, encryption: ${enc}) |`,
    `| Duration | ${formatSeconds(r.durationSeconds)} (${mbps.toFixed(1)} MB/s stored) |`,
    `| Tables | ${m.tables.length} |`,
    ...(m.artifacts.some((a) => a.section)
      ? [
          `| Artifacts | ${m.artifacts
            .filter((a) => a.section)
            .map((a) => `\`${a.name}\` ${formatBytes(a.bytes)}`)
            .join(', ')} (parallel dump, one snapshot) |`,
        ]
      : []),
    `| Globals | ${globalsCell(m)} |`,
    ...(m.objectLock
      ? [
          `| Object Lock | ${m.objectLock.mode}, every object retained until ${m.objectLock.retainUntil} (${m.objectLock.days} days) |`,
        ]
      : []),
    `| Rows | ${r.rows.toLocaleString('en-US')} |`,
    `| Manifest | \`s3://${bucket}/${r.manifestKey}\` |`,
    `| SHA-256 | \`${r.sha256}\` |`,
    `| Completion | dump ${m.artifacts[0]!.confirmedBy === 'head' ? 'confirmed by HEAD after its reply was lost' : 'confirmed by its reply'}; manifest ${r.manifestConfirmedBy === 'read-back' ? 'read back after its reply was lost' : 'confirmed by its reply'} |`,
    `| Retried requests | ${r.retries} |`,
    '',
  ].join('\n');
}

function globalsCell(m: Manifest): string {
  const g = m.artifacts.find((a) => a.name === 'globals');
  if (g) return `roles and tablespaces stored, ${formatBytes(g.bytes)} (\`${g.key.split('/').at(-1)}\`)`;
  if (m.globals?.status === 'failed') return `⚠️ not stored: ${(m.globals.error ?? '').replace(/\|/g, '\\|')}`;
  return 'not stored (`globals: false`)';
}
