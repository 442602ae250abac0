import { existsSync, readdirSync, realpathSync } from 'node:fs';
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

/**
 * Every installed copy of `tool`, one per major version: the first found on PATH, then in the usual places. A
 * dispatcher (a file of another name linked as `tool`: Debian's /usr/bin/pg_dump is pg_wrapper, a Perl script that
 * costs ~70 ms on every start and picks a version itself) is asked only when no binary of the tool's own name is
 * installed: it runs one of those. Copies that are one file (/bin and /usr/bin) are asked once, and all at once.
 */
export async function installedPgTools(tool: string): Promise<PgTool[]> {
  const files = new Map<string, string>(); // real path -> first path found
  for (const dir of candidateDirs()) {
    const file = path.join(dir, tool);
    const real = realPath(file);
    if (real && !files.has(real)) files.set(real, file);
  }
  const found = [...files].map(([real, file]) => ({ file, direct: path.basename(real) === tool }));
  const direct = found.filter((f) => f.direct);
  const asked = await Promise.all((direct.length ? direct : found).map((f) => probePgTool(f.file)));
  return onePerMajor(asked.filter((t): t is PgTool => t !== undefined));
}

/** Pure: the first tool found of each major, in the order found. */
export function onePerMajor(found: PgTool[]): PgTool[] {
  return found.filter((t, i) => found.findIndex((f) => f.major === t.major) === i);
}

function realPath(file: string): string | undefined {
  try {
    return realpathSync(file);
  } catch {
    return undefined; // absent, or a dangling link
  }
}

/**
 * Finds `tool` (pg_dump, pg_restore) whose major version is at least the server's and closest to it.
 * `explicitPath` (an input) wins, but is still checked against the server's version. `installed` lets the caller
 * start the search before it knows the server's version (it overlaps the connection).
 */
export async function findPgTool(
  tool: 'pg_dump' | 'pg_restore',
  needMajor: number,
  serverVersion: string,
  explicit?: { input: string; path: string },
  installed?: Promise<PgTool[]>,
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
  const found = await (installed ?? installedPgTools(tool));
  const usable = found.filter((f) => f.major >= needMajor).sort((a, b) => a.major - b.major);
  if (usable[0]) return usable[0];
  const seen = found.length ? found.map((f) => `${f.version} (${f.path})`).join(', ') : 'none';
  throw new UserError(
    `The server runs PostgreSQL ${serverVersion}, and no installed ${tool} is version ${needMajor} or newer (found: ${seen}). ${installHint}.`,
  );
}
