import { open } from 'node:fs/promises';
import { inputError, UserError } from './errors.js';
import { installedPgTools, parseToolVersion, pgdgInstallHint, probePgTool, type PgTool } from './pgtools.js';

/** What the header of a pg_dump custom-format archive says about where it came from. */
export interface ArchiveHeader {
  /** Archive format version, e.g. `1.14` (PostgreSQL 15's pg_dump), `1.16` (17's). */
  formatVersion: string;
  database?: string;
  /** The source server's version string (`15.18 (Debian 15.18-0+deb12u1)`). */
  serverVersion?: string;
  /** The version string of the pg_dump that wrote the archive. */
  pgDumpVersion?: string;
}

/**
 * Reads the header of a custom-format archive (pg_backup_archiver.c `ReadHead`): magic `PGDMP`, format version,
 * integer and offset sizes, format, compression, creation time, then the database name and, from format 1.10 on,
 * the server's and pg_dump's version strings. Undefined when the bytes are not such a header (or are cut short).
 */
export function parseArchiveHeader(buf: Buffer): ArchiveHeader | undefined {
  if (buf.length < 11 || buf.subarray(0, 5).toString('latin1') !== 'PGDMP') return undefined;
  const [vmaj, vmin] = [buf[5]!, buf[6]!];
  const intSize = buf[8]!;
  let pos = 11; // magic, vmaj, vmin, vrev, intSize, offSize, format
  const version = vmaj * 1000 + vmin;
  const readInt = (): number => {
    // One sign byte, then intSize bytes, least significant first.
    if (pos + 1 + intSize > buf.length) throw new RangeError('short');
    const negative = buf[pos++] !== 0;
    let v = 0;
    for (let i = 0; i < intSize; i++) v += buf[pos++]! * 2 ** (8 * i);
    return negative ? -v : v;
  };
  const readStr = (): string | undefined => {
    const n = readInt();
    if (n < 0) return undefined;
    if (pos + n > buf.length) throw new RangeError('short');
    const s = buf.subarray(pos, pos + n).toString('utf8');
    pos += n;
    return s;
  };
  try {
    if (version >= 1015)
      pos += 1; // compression algorithm (16+)
    else if (version >= 1002) readInt(); // compression level
    if (version >= 1004) for (let i = 0; i < 7; i++) readInt(); // creation time
    const header: ArchiveHeader = { formatVersion: `${vmaj}.${vmin}`, database: readStr() };
    if (version >= 1010) {
      header.serverVersion = readStr();
      header.pgDumpVersion = readStr();
    }
    return header;
  } catch {
    return undefined;
  }
}

/** The first bytes of a dump file, parsed. */
export async function readArchiveHeader(file: string): Promise<ArchiveHeader | undefined> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return parseArchiveHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** `15.18 (Debian 15.18-0+deb12u1)` -> 15; `9.6.24` -> 9; undefined when unreadable. */
export function versionMajor(version: string | undefined): number | undefined {
  return version ? parseToolVersion(`(PostgreSQL) ${version}`)?.major : undefined;
}

/** The newest pg_restore that can read an archive written by pg_dump `dumpMajor` (pg_restore reads older formats). */
export function choosePgRestore(installed: PgTool[], dumpMajor: number): PgTool | undefined {
  return installed.filter((t) => t.major >= dumpMajor).sort((a, b) => b.major - a.major)[0];
}

export interface DumpVersions {
  backupId: string;
  /** The pg_dump that wrote the archive. */
  pgDumpVersion: string;
  /** The server the data came from. */
  sourceServerVersion: string;
}

/** The refusal when a pg_restore is older than the pg_dump that wrote the archive. */
export function pgRestoreTooOld(dump: DumpVersions, tool: PgTool, input?: string): UserError {
  const need = versionMajor(dump.pgDumpVersion)!;
  return new UserError(
    `Backup ${dump.backupId} was written by pg_dump ${dump.pgDumpVersion}, and ${tool.path} is pg_restore ${tool.version}: ` +
      `pg_restore ${tool.major} cannot read archives from a newer pg_dump; it must be version ${need} or newer. ` +
      `${pgdgInstallHint(need)}${input ? `, and set \`${input}\` to it or leave it empty` : ''}.`,
  );
}

/**
 * Chooses the pg_restore for a backup: `explicit` (the `pg-restore-path` input) when given, otherwise the newest
 * installed one; either way at least as new as the dump's pg_dump. The server may be any version at least as new
 * as the source server (an older pg_restore restores into a newer server), never an older one.
 */
export async function findPgRestore(
  dump: DumpVersions,
  server: { version: string; major: number },
  explicit?: { input: string; path: string },
): Promise<PgTool> {
  const sourceMajor = versionMajor(dump.sourceServerVersion);
  if (sourceMajor !== undefined && server.major < sourceMajor) {
    throw new UserError(
      `Backup ${dump.backupId} comes from a PostgreSQL ${dump.sourceServerVersion} server, and the target server runs the older PostgreSQL ${server.version}: ` +
        `restore into a server of version ${sourceMajor} or newer (verify.yml: input \`postgres-version\`; the action: the \`target-url\` server).`,
    );
  }
  const dumpMajor = versionMajor(dump.pgDumpVersion) ?? 0;
  if (explicit) {
    const tool = await probePgTool(explicit.path);
    if (!tool)
      throw inputError(
        explicit.input,
        `"${explicit.path}" is not a runnable pg_restore`,
        'Point it at a pg_restore binary, or leave it empty to use the newest installed one.',
      );
    if (tool.major < dumpMajor) throw pgRestoreTooOld(dump, tool, explicit.input);
    return tool;
  }
  const installed = await installedPgTools('pg_restore');
  const chosen = choosePgRestore(installed, dumpMajor);
  if (chosen) return chosen;
  const newest = choosePgRestore(installed, 0);
  if (newest) throw pgRestoreTooOld(dump, newest);
  throw new UserError(
    `No pg_restore is installed; backup ${dump.backupId} needs version ${dumpMajor} or newer. ${pgdgInstallHint(dumpMajor)}.`,
  );
}
