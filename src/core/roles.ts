/**
 * Before a restore: the extensions and roles the archive needs, checked against the target server, and the
 * missing roles created as NOLOGIN roles without a password (and dropped again after a verification).
 */
import type { Cancellation } from '../lib/cancel.js';
import type pg from 'pg';
import { UserError } from '../lib/errors.js';
import { extensionsInToc, missingExtensionsMessage } from '../lib/extensions.js';
import type { Logger } from '../lib/log.js';
import { quoteIdent } from '../lib/pg-client.js';
import { serverVersion } from '../lib/pg-catalog.js';
import type { PgTool } from '../lib/pgtools.js';
import type { Processes } from '../lib/process.js';
import type { Files } from '../lib/files.js';
import { createRoleSql, referencedRoles, roleAttributesFromGlobals } from '../lib/roles.js';

export type CreateRoles = 'missing' | 'none';

export interface ArchiveNeeds {
  extensions: string[];
  /** Roles the restore will refer to with the given pg_restore flags (policies, and owners/grants when kept). */
  roles: string[];
}

/** Reads the archive's TOC and the schema SQL pg_restore would run with `restoreFlags`. */
export async function archiveNeeds(
  tool: PgTool,
  file: string,
  restoreFlags: string[],
  processes: Processes,
  cancel?: Cancellation,
): Promise<ArchiveNeeds> {
  const toc = await processes.run(tool.path, ['-l', file], {}, cancel);
  if (toc.code !== 0)
    throw new UserError(`pg_restore cannot read the archive's table of contents: ${toc.stderr.trim()}`);
  const sql = await processes.run(tool.path, ['--schema-only', ...restoreFlags, '-f', '-', file], {}, cancel);
  if (sql.code !== 0) throw new UserError(`pg_restore cannot read the archive's schema: ${sql.stderr.trim()}`);
  return { extensions: extensionsInToc(toc.stdout), roles: referencedRoles(sql.stdout) };
}

/** Fails, before any restore work, with one message naming every extension the target server cannot install. */
export async function checkExtensions(admin: pg.Client, extensions: string[]): Promise<void> {
  if (extensions.length === 0) return;
  const available = new Set(
    (await admin.query<{ name: string }>('SELECT name FROM pg_available_extensions')).rows.map((r) => r.name),
  );
  const missing = extensions.filter((e) => !available.has(e));
  if (missing.length === 0) return;
  throw new UserError(missingExtensionsMessage(missing, (await serverVersion(admin)).version));
}

export async function missingRoles(admin: pg.Client, roles: string[]): Promise<string[]> {
  if (roles.length === 0) return [];
  const present = new Set(
    (
      await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])', [roles])
    ).rows.map((r) => r.rolname),
  );
  return roles.filter((r) => !present.has(r));
}

/**
 * Creates `roles` as NOLOGIN roles with no password, with BYPASSRLS/NOINHERIT as the backup's globals say
 * (never SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or LOGIN). Returns the roles created, in order; on failure
 * the roles created so far are in `created` for the caller to drop.
 */
export async function createRoles(
  admin: pg.Client,
  roles: string[],
  /** The backup's `pg_dumpall --globals-only` SQL, when it has one: the roles' attributes. */
  globalsSql: string | undefined,
  comment: string,
  created: string[],
  log: Logger,
): Promise<void> {
  const attrs = globalsSql ? roleAttributesFromGlobals(globalsSql, roles) : new Map();
  for (const role of roles) {
    const a = attrs.get(role);
    try {
      await admin.query(createRoleSql(role, a));
    } catch (e) {
      if (!(a?.bypassRls && insufficientPrivilege(e))) throw roleNotCreated(role, roles, e);
      // Only superusers (and, from 16, holders of BYPASSRLS) may grant it. The refusal is 42501, as a missing
      // CREATEROLE is too (15: "must be superuser to create bypassrls users"; 16+: "permission denied to create
      // role", the attribute named only in the detail): creating the role without BYPASSRLS tells the two apart.
      try {
        await admin.query(createRoleSql(role, { ...a, bypassRls: false }));
      } catch (e2) {
        throw roleNotCreated(role, roles, e2);
      }
      log.warn(
        `Role "${role}" has BYPASSRLS in the backup's globals, but this user cannot grant it (${pgMessage(e)}).`,
      );
    }
    created.push(role);
    await admin.query(`COMMENT ON ROLE ${quoteIdent(role)} IS ${literal(comment)}`).catch(() => undefined);
  }
  const from = attrs.size ? ` (attributes from the backup's globals for ${attrs.size})` : '';
  log.info(`Created ${roles.length} missing role(s) as NOLOGIN without password${from}: ${roles.join(', ')}`);
}

/** SQLSTATE 42501, insufficient_privilege: the server's code for a privilege the user lacks. */
export function insufficientPrivilege(e: unknown): boolean {
  return (e as { code?: unknown })?.code === '42501';
}

/** A server error's message with its detail, where PostgreSQL 16+ names the missing attribute. */
function pgMessage(e: unknown): string {
  const { message, detail } = (e ?? {}) as { message?: string; detail?: string };
  return detail ? `${message} ${detail}` : String(message);
}

function roleNotCreated(role: string, roles: string[], e: unknown): UserError {
  return new UserError(
    `Could not create the role "${role}" that the backup refers to (${pgMessage(e)}). Give the target user CREATEROLE, or create the role${roles.length > 1 ? 's' : ''} ${roles.map((r) => `"${r}"`).join(', ')} on the target first.`,
    { cause: e },
  );
}

/** Drops roles this run created; a role something else now depends on is left, with a warning. */
export async function dropRoles(admin: pg.Client, roles: string[], log: Logger): Promise<string[]> {
  const dropped: string[] = [];
  for (const role of roles) {
    try {
      await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
      dropped.push(role);
    } catch (e) {
      log.warn(`Left role "${role}" in place: ${(e as Error).message}`);
    }
  }
  if (dropped.length) log.info(`Dropped the role(s) created for this run: ${dropped.join(', ')}`);
  return dropped;
}

/** Restore mode with `create-roles: none`: every missing role named, before anything is restored. */
export function missingRolesError(missing: string[]): UserError {
  return new UserError(
    `Input \`create-roles\`: the backup refers to ${missing.length} role(s) the target server lacks (${missing.map((r) => `"${r}"`).join(', ')}) and \`create-roles\` is \`none\`; nothing was restored. Create them on the target (e.g. from the backup's globals.sql), or set \`create-roles: missing\` to create them as NOLOGIN roles without password.`,
  );
}

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * The stage before any restore work: extensions checked, missing roles created (verify mode always; restore mode
 * unless `create-roles: none`). Roles created are appended to `created` as they are, so the caller can drop them.
 */
export async function prepareTarget(p: {
  admin: pg.Client;
  tool: PgTool;
  /** The archive; a multi-artifact backup: its pre-data and post-data archives (policies name roles in post-data). */
  file: string | string[];
  restoreFlags: string[];
  mode: 'verify' | 'restore';
  createRoles: CreateRoles;
  globalsFile?: string;
  comment: string;
  created: string[];
  log: Logger;
  processes: Processes;
  files: Files;
  /** Stops the pg_restore it runs to read the archive. */
  cancel?: Cancellation;
}): Promise<void> {
  const all = await Promise.all(
    (Array.isArray(p.file) ? p.file : [p.file]).map((f) =>
      archiveNeeds(p.tool, f, p.restoreFlags, p.processes, p.cancel),
    ),
  );
  const needs: ArchiveNeeds = {
    extensions: [...new Set(all.flatMap((n) => n.extensions))],
    roles: [...new Set(all.flatMap((n) => n.roles))],
  };
  await checkExtensions(p.admin, needs.extensions);
  const missing = await missingRoles(p.admin, needs.roles);
  if (missing.length === 0) return;
  if (p.mode === 'restore' && p.createRoles === 'none') throw missingRolesError(missing);
  const globalsSql = p.globalsFile ? p.files.readText(p.globalsFile) : undefined;
  await createRoles(p.admin, missing, globalsSql, p.comment, p.created, p.log);
}
