import { randomBytes } from 'node:crypto';

/** `20261121T020000Z-3f9a`: the UTC start time first, so keys sort by time; a random suffix, so runs never collide. */
export function newBackupId(start: Date, random: () => string = () => randomBytes(2).toString('hex')): string {
  return `${compactUtc(start)}-${random()}`;
}

/** `20261121T020000Z` */
export function compactUtc(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

const BACKUP_ID = /^(\d{8}T\d{6}Z)-[0-9a-z]+$/;

export function isBackupId(id: string): boolean {
  return BACKUP_ID.test(id);
}

/** The start time encoded in a backup id, or undefined when the id is not ours. */
export function backupIdTime(id: string): Date | undefined {
  const m = BACKUP_ID.exec(id);
  if (!m) return undefined;
  const s = m[1]!;
  return new Date(
    `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`,
  );
}

/** A key prefix without its outer slashes: `/a/b/` → `a/b`. */
export function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

/** `<prefix>/` or `` for the bucket's root: the form every listing under a prefix takes. */
export function prefixBase(prefix: string): string {
  const p = trimSlashes(prefix);
  return p ? p + '/' : '';
}

/** `<prefix>/<database>/`: everything retention may touch for one database. */
export function databasePrefix(prefix: string, database: string): string {
  return `${prefixBase(prefix)}${trimSlashes(database)}/`;
}

export function backupPrefix(prefix: string, database: string, backupId: string): string {
  return `${databasePrefix(prefix, database)}${backupId}/`;
}

export const MANIFEST_NAME = 'manifest.json';

export function dumpFileName(compression: 'none' | 'gzip' | 'zstd', encrypted: boolean): string {
  return `dump.pgdump${compression === 'zstd' ? '.zst' : ''}${encrypted ? '.age' : ''}`;
}

/** The backup id of a key under a database prefix, or undefined. */
export function backupIdOfKey(dbPrefix: string, key: string): string | undefined {
  if (!key.startsWith(dbPrefix)) return undefined;
  const rest = key.slice(dbPrefix.length);
  const id = rest.split('/')[0];
  return id && isBackupId(id) ? id : undefined;
}

/**
 * Why a value cannot become part of an object key, or undefined: the one validator for every input that does
 * (`s3-prefix`, `database`, ...). `path` allows `/`-separated segments; `spaces` allows spaces inside them.
 * Refused everywhere: `.` and `..` segments (keys outside the stream), empty segments, control characters.
 */
export function keyProblem(value: string, o: { path: boolean; spaces: boolean }): string | undefined {
  if (/\p{Cc}/u.test(value)) return 'contains a control character';
  if (!o.path && value.includes('/')) return 'contains `/`';
  if (!o.spaces && /\s/.test(value)) return 'contains a space';
  for (const s of value.split('/')) {
    if (s === '') return 'has an empty segment (`//`)';
    if (s === '.' || s === '..') return `has a \`${s}\` segment, which would leave the prefix`;
    if (s !== s.trim()) return 'has a segment that starts or ends with a space';
  }
  return undefined;
}
