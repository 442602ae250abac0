import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { inputError, UserError } from './errors.js';
import { run } from './process.js';

export interface PgTool {
  path: string;
  major: number;
  version: string;
}

/** `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` -> 15.18 */
export function parseToolVersion(text: string): { major: number; version: string } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  const version = m[0].replace(/^\(PostgreSQL\)\s+/, '');
  return { major, version };
}

/** server_version_num 150018 -> 15; 90624 -> 9 */
export function serverMajor(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

function candidateDirs(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const globs: [string, RegExp][] = [
    ['/usr/lib/postgresql', /^\d+$/],
    ['/opt/homebrew/opt', /^postgresql(@\d+)?$/],
    ['/usr/local/opt', /^postgresql(@\d+)?$/],
    ['/Applications/Postgres.app/Contents/Versions', /^\d+/],
  ];
  for (const [root, re] of globs) {
    if (!existsSync(root)) continue;
    for (const d of readdirSync(root)) if (re.test(d)) dirs.push(path.join(root, d, 'bin'));
  }
  for (const d of existsSync('/usr') ? readdirSync('/usr') : []) if (/^pgsql-\d+$/.test(d)) dirs.push(`/usr/${d}/bin`);
  return [...new Set(dirs)];
}

/** Runs `file --version`; undefined when it is not a runnable PostgreSQL tool. */
export async function probePgTool(file: string): Promise<PgTool | undefined> {
  try {
    const out = await run(file, ['--version']);
    const v = parseToolVersion(out.stdout);
    return v && out.code === 0 ? { path: file, ...v } : undefined;
  } catch {
    return undefined;
  }
}

/** How to install the client tools of one major (no trailing full stop). */
export function pgdgInstallHint(major: number): string {
  return `On GitHub's Ubuntu runners install the PGDG client: \`sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-${major}\`; elsewhere install PostgreSQL ${major} client tools`;
}

/** Every installed copy of `tool`, one per major version (the first found on PATH, then in the usual places). */
export async function installedPgTools(tool: string): Promise<PgTool[]> {
  const found: PgTool[] = [];
  for (const dir of candidateDirs()) {
    const file = path.join(dir, tool);
    if (!existsSync(file)) continue;
    const p = await probePgTool(file);
    if (p && !found.some((f) => f.major === p.major)) found.push(p);
  }
  return found;
}

/**
 * Finds `tool` (pg_dump, pg_restore) whose major version is at least the server's and closest to it.
 * `explicitPath` (an input) wins, but is still checked against the server's version.
 */
export async function findPgTool(
  tool: 'pg_dump' | 'pg_restore',
  needMajor: number,
  serverVersion: string,
  explicit?: { input: string; path: string },
): Promise<PgTool> {
  const installHint = pgdgInstallHint(needMajor);
  if (explicit) {
    const found = await probePgTool(explicit.path);
    if (!found)
      throw inputError(
        explicit.input,
        `"${explicit.path}" is not a runnable ${tool}`,
        `Point it at a ${tool} binary, or leave it empty to search the installed ones.`,
      );
    if (found.major < needMajor) {
      throw new UserError(
        `The server runs PostgreSQL ${serverVersion} but ${found.path} is ${tool} ${found.version}; ${tool} must be version ${needMajor} or newer. ${installHint}, and set \`${explicit.input}\` to it or leave it empty.`,
      );
    }
    return found;
  }
  const found = await installedPgTools(tool);
  const usable = found.filter((f) => f.major >= needMajor).sort((a, b) => a.major - b.major);
  if (usable[0]) return usable[0];
  const seen = found.length ? found.map((f) => `${f.version} (${f.path})`).join(', ') : 'none';
  throw new UserError(
    `The server runs PostgreSQL ${serverVersion}, and no installed ${tool} is version ${needMajor} or newer (found: ${seen}). ${installHint}.`,
  );
}
