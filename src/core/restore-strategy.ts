import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import type { Cancellation, Undo } from '../lib/cancel.js';
import { UserError } from '../lib/errors.js';
import { compactUtc } from '../lib/keys.js';
import { formatSeconds, type Logger } from '../lib/log.js';
import { githubContext } from '../lib/manifest.js';
import { connectPg, quoteIdent } from '../lib/pg-client.js';
import type { PgTarget } from '../lib/pg-url.js';
import type { RunContext } from '../lib/run-context.js';

/**
 * Where a restore writes and what happens to it afterwards. `swap` and `new-database` restore into a new database
 * and touch the target only after it passed every check (swap: by two renames in one transaction); `in-place`
 * restores into the target itself. Verification restores into a scratch database that is always dropped.
 */
export type RestoreStrategy = 'swap' | 'new-database' | 'in-place';
export const RESTORE_STRATEGIES = ['swap', 'new-database', 'in-place'] as const;

export interface DestinationOptions {
  target: PgTarget;
  mode: 'verify' | 'restore';
  strategy: RestoreStrategy;
  /** new-database: the name to restore into; empty: `<target>__restored_<UTC stamp>`. */
  newDatabase?: string;
  keepFailed: boolean;
  staleGraceSeconds: number;
  backupId: string;
  /** A table restore (in-place: one transaction). */
  tables: boolean;
}

export interface Destination {
  strategy: RestoreStrategy | 'scratch';
  /** The database pg_restore writes into. */
  database: string;
  /** pg_restore --single-transaction: an in-place table restore applies wholly or not at all. */
  singleTransaction: boolean;
  /** Outputs to set (previous-database, swap-unavailable-ms, restored-database). */
  outputs: Record<string, string>;
  /** Lines for the step summary. */
  notes: string[];
  /** Once: after a passed check, swap or keep; after a failure, drop (or keep with keep-failed). */
  finish(passed: boolean): Promise<void>;
}

/** The marker every database we create for ourselves carries until it is handed over: its comment. */
export const MARKER_PREFIX = 'postgres-backup-actions temporary database ';

export interface Marker {
  kind: 'scratch' | 'restoring' | 'restored';
  run: string;
  startedAt: string;
}

/** This process: the run (a GitHub run URL) and the process in it, so that a run never takes its own for leftovers. */
export function runLabel(run: RunContext): string {
  const gh = githubContext(run);
  return `${gh ? `${gh.runUrl}, ` : ''}pid ${process.pid} on ${os.hostname()}`;
}

export function markerComment(kind: Marker['kind'], startedAt: Date, run: RunContext): string {
  return (
    MARKER_PREFIX + JSON.stringify({ kind, run: runLabel(run), startedAt: startedAt.toISOString() } satisfies Marker)
  );
}

export function parseMarker(comment: string | null | undefined): Marker | undefined {
  if (!comment?.startsWith(MARKER_PREFIX)) return undefined;
  try {
    const m = JSON.parse(comment.slice(MARKER_PREFIX.length)) as Marker;
    return typeof m.startedAt === 'string' && !Number.isNaN(Date.parse(m.startedAt)) ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Marked databases older than the grace period: what a killed run left. Never a database without the marker. */
export function staleDatabases(
  databases: { name: string; comment: string | null }[],
  now: Date,
  graceSeconds: number,
  run: RunContext,
): { name: string; marker: Marker }[] {
  const own = runLabel(run);
  const out: { name: string; marker: Marker }[] = [];
  for (const d of databases) {
    const marker = parseMarker(d.comment);
    // This process's own databases (several streams in one run) are never leftovers, whatever the grace.
    if (marker && marker.run !== own && now.getTime() - Date.parse(marker.startedAt) >= graceSeconds * 1000)
      out.push({ name: d.name, marker });
  }
  return out;
}

/** `name` shortened (by whole characters) so that `name + suffix` fits Postgres's 63-byte identifiers. */
export function derivedName(name: string, suffix: string): string {
  let base = name;
  while (Buffer.byteLength(base + suffix) > 63) base = [...base].slice(0, -1).join('');
  return base + suffix;
}

/** A database on the target's server to connect to while `avoid` is created, renamed or dropped. */
export function maintenanceDatabase(target: PgTarget, avoid: string): string {
  if (target.database !== avoid) return target.database;
  return avoid === 'postgres' ? 'template1' : 'postgres';
}

/** Drops a database of ours on its own connection (the run's may be busy), ending any session still in it. */
export async function dropDatabase(target: PgTarget, name: string): Promise<void> {
  const c = await connectPg(target, 'target-url', maintenanceDatabase(target, name));
  try {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** What a database has at the database level, which a replacement must keep. */
export interface DatabaseProps {
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  /** c (libc), i (icu), b (builtin); absent before PostgreSQL 15. */
  localeProvider?: string;
  locale?: string;
  icuRules?: string;
  connectionLimit: number;
  tablespace: string;
  comment: string | null;
  /** `ALTER DATABASE ... SET` (role '') and `ALTER ROLE r IN DATABASE ... SET`. */
  settings: { role: string; name: string; value: string }[];
  /** null: the default privileges. */
  grants: { grantee: string; privilege: string; grantable: boolean }[] | null;
}

export async function readDatabaseProps(c: pg.Client, name: string): Promise<DatabaseProps> {
  const row = (
    await c.query<{ j: Record<string, unknown>; owner: string; encoding: string; tablespace: string; comment: string }>(
      `SELECT to_jsonb(d) AS j, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
              t.spcname AS tablespace, shobj_description(d.oid, 'pg_database') AS comment
       FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1`,
      [name],
    )
  ).rows[0];
  if (!row) throw new UserError(`Database "${name}" does not exist: check the database name in \`target-url\`.`);
  const j = row.j;
  const settings = (
    await c.query<{ role: string | null; setting: string }>(
      `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, unnest(s.setconfig) AS setting
       FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 ORDER BY 1 NULLS FIRST, 2`,
      [name],
    )
  ).rows.map((r) => {
    const eq = r.setting.indexOf('=');
    return { role: r.role ?? '', name: r.setting.slice(0, eq), value: r.setting.slice(eq + 1) };
  });
  const grants =
    j.datacl === null
      ? null
      : (
          await c.query<{ grantee: string; privilege: string; grantable: boolean }>(
            `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                    a.privilege_type AS privilege, a.is_grantable AS grantable
             FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1 ORDER BY 1, 2`,
            [name],
          )
        ).rows;
  const str = (k: string) => (typeof j[k] === 'string' && j[k] !== '' ? (j[k] as string) : undefined);
  return {
    owner: row.owner,
    encoding: row.encoding,
    collate: str('datcollate') ?? 'C',
    ctype: str('datctype') ?? 'C',
    localeProvider: str('datlocprovider'),
    locale: str('datlocale') ?? str('daticulocale'),
    icuRules: str('daticurules'),
    connectionLimit: Number(j.datconnlimit ?? -1),
    tablespace: row.tablespace,
    comment: row.comment,
    settings,
    grants,
  };
}

/** CREATE DATABASE with the owner, encoding, locale and limits of `p`. */
export function createDatabaseSql(name: string, p: DatabaseProps): string {
  const parts = [
    `CREATE DATABASE ${quoteIdent(name)} WITH TEMPLATE template0`,
    `OWNER ${quoteIdent(p.owner)}`,
    `ENCODING ${literal(p.encoding)}`,
    `LC_COLLATE ${literal(p.collate)}`,
    `LC_CTYPE ${literal(p.ctype)}`,
  ];
  if (p.localeProvider === 'i') {
    parts.push('LOCALE_PROVIDER icu');
    if (p.locale) parts.push(`ICU_LOCALE ${literal(p.locale)}`);
    if (p.icuRules) parts.push(`ICU_RULES ${literal(p.icuRules)}`);
  } else if (p.localeProvider === 'b') {
    parts.push('LOCALE_PROVIDER builtin');
    if (p.locale) parts.push(`BUILTIN_LOCALE ${literal(p.locale)}`);
  } else if (p.localeProvider === 'c') parts.push('LOCALE_PROVIDER libc');
  if (p.tablespace !== 'pg_default') parts.push(`TABLESPACE ${quoteIdent(p.tablespace)}`);
  if (p.connectionLimit !== -1) parts.push(`CONNECTION LIMIT ${p.connectionLimit}`);
  return parts.join(' ');
}

/** Settings whose stored value is already a list of quoted identifiers (as pg_dumpall treats them). */
const LIST_SETTINGS = new Set([
  'search_path',
  'temp_tablespaces',
  'session_preload_libraries',
  'local_preload_libraries',
  'shared_preload_libraries',
  'unix_socket_directories',
]);

/** The settings and grants of `p`, applied to database `name` (after the restore: a setting may forbid writes). */
export function databaseSettingsSql(name: string, p: DatabaseProps): string[] {
  const db = quoteIdent(name);
  const out: string[] = [];
  for (const s of p.settings) {
    const value = LIST_SETTINGS.has(s.name) ? s.value : literal(s.value);
    out.push(
      s.role
        ? `ALTER ROLE ${quoteIdent(s.role)} IN DATABASE ${db} SET ${quoteIdent(s.name)} TO ${value}`
        : `ALTER DATABASE ${db} SET ${quoteIdent(s.name)} TO ${value}`,
    );
  }
  if (p.grants) {
    out.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, `REVOKE ALL ON DATABASE ${db} FROM ${quoteIdent(p.owner)}`);
    for (const g of p.grants) {
      const to = g.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g.grantee);
      out.push(`GRANT ${g.privilege} ON DATABASE ${db} TO ${to}${g.grantable ? ' WITH GRANT OPTION' : ''}`);
    }
  }
  return out;
}

export const commentSql = (name: string, comment: string | null) =>
  `COMMENT ON DATABASE ${quoteIdent(name)} IS ${comment === null ? 'NULL' : literal(comment)}`;

/** The SQL that makes `from` the database called `to` (and keeps `to` as `keep`), ending sessions first. */
export function renameSql(to: string, keep: string, from: string): string {
  return [
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (${literal(to)}, ${literal(from)}) AND pid <> pg_backend_pid();`,
    'BEGIN;',
    `ALTER DATABASE ${quoteIdent(to)} RENAME TO ${quoteIdent(keep)};`,
    `ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)};`,
    'COMMIT;',
  ].join('\n');
}

interface Deps {
  log: Logger;
  cancel: Cancellation;
  now: () => Date;
  run: RunContext;
}

/**
 * Removes what killed runs left on the target's server, then prepares where this run restores: a scratch database
 * (verify), a new database (swap, new-database) created with the target's database-level properties, or the
 * target itself (in-place).
 */
export async function prepareDestination(admin: pg.Client, o: DestinationOptions, deps: Deps): Promise<Destination> {
  const { log, cancel, now } = deps;
  const notes = await removeStaleDatabases(admin, o.staleGraceSeconds, now(), log, deps.run);
  const target = o.target.database;
  const base: Omit<Destination, 'strategy' | 'database' | 'finish'> = { singleTransaction: false, outputs: {}, notes };

  if (o.mode === 'restore' && o.strategy === 'in-place') {
    if (o.tables) notes.push('In-place table restore: run as one transaction (`pg_restore --single-transaction`).');
    else
      notes.push(
        '> [!WARNING]\n> In-place restore: the backup was restored into the live database. Had it been interrupted or failed part-way, the database would have been left partly restored; `restore-strategy: swap` never touches it until the copy is checked.',
      );
    return { ...base, strategy: 'in-place', database: target, singleTransaction: o.tables, finish: async () => {} };
  }

  const startedAt = now();
  let name: string;
  let kind: Marker['kind'];
  let props: DatabaseProps | undefined;
  if (o.mode === 'verify') {
    name = `pba_verify_${o.backupId.toLowerCase().replace(/-/g, '_')}_${randomBytes(3).toString('hex')}`;
    kind = 'scratch';
  } else {
    props = await readDatabaseProps(admin, target);
    if (o.strategy === 'swap') {
      await checkSwapPrivileges(admin, target);
      name = derivedName(target, `__restoring_${randomBytes(3).toString('hex')}`);
      kind = 'restoring';
    } else {
      name = o.newDatabase || derivedName(target, `__restored_${compactUtc(startedAt)}`);
      kind = 'restored';
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount)
        throw new UserError(
          `Input \`new-database\`: database "${name}" already exists on ${o.target.host}:${o.target.port}; a restore never overwrites one. Choose another name, or drop it first.`,
        );
    }
  }
  await admin.query(props ? createDatabaseSql(name, props) : `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
  const drop: Undo = cancel.onCancel(
    `dropped the ${kind === 'scratch' ? 'scratch' : kind === 'restoring' ? 'restoring' : 'new'} database "${name}"`,
    () => dropDatabase(o.target, name),
  );
  await admin.query(commentSql(name, markerComment(kind, startedAt, deps.run)));
  log.info(`Created database "${name}" to restore into${props ? ` (owner ${props.owner}, ${props.encoding})` : ''}`);

  let finished = false;
  const dest: Destination = {
    ...base,
    strategy: o.mode === 'verify' ? 'scratch' : o.strategy,
    database: name,
    finish: async (passed) => {
      if (finished) return;
      finished = true;
      if (kind === 'scratch') return drop.run();
      if (!passed) {
        if (!o.keepFailed) {
          await drop.run();
          notes.push(`The target "${target}" was not touched; the failed restore "${name}" was dropped.`);
          return;
        }
        drop.dismiss();
        await admin.query(
          commentSql(name, `postgres-backup-actions: failed restore of backup ${o.backupId}, kept for diagnosis`),
        );
        notes.push(
          `The target "${target}" was not touched. The failed restore is kept as "${name}" (\`keep-failed\`); drop it when done: \`DROP DATABASE ${quoteIdent(name)};\``,
        );
        log.warn(`The failed restore is kept as database "${name}" (keep-failed).`);
        return;
      }
      for (const sql of databaseSettingsSql(name, props!)) await admin.query(sql);
      if (kind === 'restored') {
        await admin.query(commentSql(name, props!.comment));
        drop.dismiss();
        dest.outputs['restored-database'] = name;
        notes.push(`Restored and checked into the new database "${name}"; the target "${target}" was not touched.`);
        return;
      }
      await swap(admin, o, name, props!, drop, dest, deps);
    },
  };
  return dest;
}

/** Fails early, before anything is restored, when the swap's renames could not be done. */
async function checkSwapPrivileges(c: pg.Client, target: string): Promise<void> {
  const r = (
    await c.query<{ user: string; can_create: boolean; owns: boolean }>(
      `SELECT current_user AS user, (r.rolsuper OR r.rolcreatedb) AS can_create,
              (r.rolsuper OR pg_has_role(current_user, d.datdba, 'USAGE')) AS owns
       FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = $1`,
      [target],
    )
  ).rows[0]!;
  if (!r.can_create || !r.owns) {
    throw new UserError(
      `Input \`restore-strategy\`: \`swap\` creates a database and renames "${target}", which needs ${[!r.can_create ? 'the CREATEDB privilege' : '', !r.owns ? `ownership of "${target}" (membership in its owner role)` : ''].filter(Boolean).join(' and ')}; the user "${r.user}" lacks it. Grant it, or use \`restore-strategy: new-database\` (and switch the application's URL) or \`in-place\`.`,
    );
  }
}

async function swap(
  admin: pg.Client,
  o: DestinationOptions,
  restored: string,
  props: DatabaseProps,
  drop: Undo,
  dest: Destination,
  deps: Deps,
): Promise<void> {
  const { log, cancel, now } = deps;
  const target = o.target.database;
  const previous = derivedName(target, `__before_${compactUtc(now())}`);
  // The renames run on the server's maintenance database: no database being renamed may have a session open.
  const maint = await connectPg(o.target, 'target-url', maintenanceDatabase(o.target, target));
  let unavailableMs = 0;
  try {
    log.info(
      `Swapping: ending the sessions on "${target}", renaming it to "${previous}" and "${restored}" to "${target}"`,
    );
    await cancel.atomically(async () => {
      const t0 = performance.now();
      await maint.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [target],
      );
      await maint.query('BEGIN');
      try {
        // Bounded: a lock or a session that will not go must not hold the target's name hostage.
        await maint.query("SET LOCAL lock_timeout = '2s'");
        await maint.query(`ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(previous)}`);
        await maint.query(`ALTER DATABASE ${quoteIdent(restored)} RENAME TO ${quoteIdent(target)}`);
        await maint.query(commentSql(target, props.comment));
        await maint.query('COMMIT');
      } catch (e) {
        await maint.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
      unavailableMs = Math.round(performance.now() - t0);
      drop.dismiss();
      if (cancel.cancelled)
        cancel.notes.push(
          `The swap had begun and was completed: "${target}" is the restored backup ${o.backupId}; the previous database is kept as "${previous}".`,
        );
    });
  } catch (e) {
    // Cancelled before or during the swap: the cancel drops the restoring database (the target is as it was).
    if (cancel.cancelled) throw e;
    drop.dismiss();
    await maint
      .query(commentSql(restored, `postgres-backup-actions: checked restore of backup ${o.backupId}; the swap failed`))
      .catch(() => undefined);
    throw new UserError(
      `The swap could not be done (${(e as Error).message}). Database "${target}" was not touched; the restored and checked copy is kept as "${restored}". To finish by hand, connect to another database of the server as the owner of "${target}" and run:\n${renameSql(target, previous, restored)}\nor point the application at "${restored}", or drop it: DROP DATABASE ${quoteIdent(restored)};`,
      { cause: e },
    );
  } finally {
    await maint.end().catch(() => undefined);
  }
  dest.outputs['previous-database'] = previous;
  dest.outputs['swap-unavailable-ms'] = String(unavailableMs);
  const rolledBack = derivedName(target, `__rolled_back_${compactUtc(now())}`);
  dest.notes.push(
    `Swapped: "${target}" is now the restored backup; its sessions were ended and the name was unavailable for ${unavailableMs} ms. The previous database is kept as \`${previous}\`.`,
    '',
    'To roll back (run on another database of the server, e.g. `postgres`):',
    '',
    '```sql',
    renameSql(target, rolledBack, previous),
    '```',
    '',
    'When you are sure, drop the previous database:',
    '',
    '```sql',
    `DROP DATABASE ${quoteIdent(previous)};`,
    '```',
  );
}

/** Drops marked databases older than the grace period and says so; younger ones may belong to a running job. */
async function removeStaleDatabases(
  c: pg.Client,
  graceSeconds: number,
  now: Date,
  log: Logger,
  run: RunContext,
): Promise<string[]> {
  const rows = (
    await c.query<{ name: string; comment: string | null }>(
      `SELECT datname AS name, shobj_description(oid, 'pg_database') AS comment FROM pg_database
       WHERE shobj_description(oid, 'pg_database') LIKE $1`,
      [MARKER_PREFIX + '%'],
    )
  ).rows;
  const notes: string[] = [];
  const stale = staleDatabases(rows, now, graceSeconds, run);
  for (const s of stale) {
    if (s.name === c.database) continue;
    try {
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(s.name)} WITH (FORCE)`);
      const line = `Removed the leftover ${s.marker.kind} database "${s.name}" (started ${s.marker.startedAt} by ${s.marker.run}; older than \`stale-grace\` ${formatSeconds(graceSeconds)}).`;
      log.info(line);
      notes.push(line);
    } catch (e) {
      log.warn(`Could not remove the leftover database "${s.name}": ${(e as Error).message}`);
    }
  }
  const young = rows.length - stale.length;
  if (young > 0)
    log.info(`${young} marked database(s) younger than \`stale-grace\` left alone (another run may be using them).`);
  return notes;
}
