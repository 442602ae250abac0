import { UserError } from '../lib/errors.js';
import { backupIdOfKey, backupIdTime, databasePrefix, MANIFEST_NAME } from '../lib/keys.js';
import { manifestProblem, type Manifest } from '../lib/manifest.js';
import type { ObjectStore } from '../lib/s3.js';

/** One backup prefix as found in a listing: complete when its manifest and its dump exist. */
export interface BackupEntry {
  backupId: string;
  /** Start time from the backup id (the manifest's startedAt, to the second). */
  time: Date;
  complete: boolean;
  /** Why a backup with a manifest is nevertheless not complete (its dump is missing); never restored or counted. */
  broken?: string;
  /** Size of every object of the backup, by key. */
  sizes: Map<string, number>;
  manifestKey?: string;
  keys: string[];
  bytes: number;
  /** Newest last. */
  verificationKeys: string[];
  lastModified: Date;
}

export interface VerificationRecord {
  formatVersion: 1;
  backupId: string;
  status: 'passed' | 'failed';
  mode: 'verify' | 'restore';
  verifiedAt: string;
  rtoSeconds: number;
  rpoSeconds: number;
  timings: Record<string, number>;
  tablesChecked: number;
  rowsChecked: number;
  failures: string[];
  /** Roles the run created on the target server because the backup refers to them. */
  rolesCreated?: string[];
  versions: { server?: string; pgRestore?: string };
  github: Manifest['github'];
  /** Where the data compared with the manifest came from: a restore of the S3 dump (absent in older records), or a Neon branch at the backup's point in time (src/core/neon-verify.ts). */
  source?: 's3' | 'neon';
  neon?: NeonVerificationFacts;
}

export interface NeonVerificationFacts {
  projectId: string;
  branchId?: string;
  branchName: string;
  /** The point the branch was created at, as asked. */
  lsn?: string;
  timestamp?: string;
  /** Where the point came from: the backup's `snapshotLsn`, its `snapshotAt`, or the user's `lsn` / `timestamp`. */
  pointFrom: 'snapshotLsn' | 'snapshotAt' | 'input';
  /** True when the point is not exactly the dump's snapshot: differences are reported, not failed. */
  approximate: boolean;
  /** False when the branch could not be deleted (it still expires at `expiresAt`). */
  branchDeleted: boolean;
  expiresAt: string;
  differences?: { table: string; expected: number | null; actual: number | null }[];
}

/** Neon verification records are named `verifications/<time>-neon-<random>.json`; S3 ones have no `-neon-`. */
export const isNeonVerificationKey = (key: string): boolean => /\/verifications\/[^/]*-neon-[^/]*\.json$/.test(key);

/**
 * Lists every backup of one database, oldest first. Keys that are not `<prefix>/<database>/<backup-id>/...` are
 * ignored, so that neighbouring prefixes (`app` beside `app2`) are never mistaken for ours.
 */
export async function listBackups(store: ObjectStore, prefix: string, database: string): Promise<BackupEntry[]> {
  const dbPrefix = databasePrefix(prefix, database);
  const objects = await store.listAll(dbPrefix);
  const byId = new Map<string, BackupEntry>();
  for (const o of objects) {
    const id = backupIdOfKey(dbPrefix, o.key);
    if (!id) continue;
    let e = byId.get(id);
    if (!e) {
      e = {
        backupId: id,
        time: backupIdTime(id)!,
        complete: false,
        keys: [],
        sizes: new Map(),
        bytes: 0,
        verificationKeys: [],
        lastModified: o.lastModified,
      };
      byId.set(id, e);
    }
    e.keys.push(o.key);
    e.sizes.set(o.key, o.bytes);
    e.bytes += o.bytes;
    if (o.lastModified > e.lastModified) e.lastModified = o.lastModified;
    const rest = o.key.slice(dbPrefix.length + id.length + 1);
    if (rest === MANIFEST_NAME) {
      e.complete = true;
      e.manifestKey = o.key;
    } else if (rest.startsWith('verifications/') && rest.endsWith('.json')) e.verificationKeys.push(o.key);
  }
  const entries = [...byId.values()].sort((a, b) => a.backupId.localeCompare(b.backupId));
  for (const e of entries) {
    e.verificationKeys.sort();
    // A manifest without a dump beside it (a dump deleted or lost while the manifest stayed) is broken.
    const base = `${dbPrefix}${e.backupId}/`;
    // A multi-artifact backup (jobs > 1) has its sections instead: pre-data and post-data at least.
    const has = (name: string) => e.keys.some((k) => k.startsWith(`${base}${name}.`));
    if (e.complete && !has('dump') && !(has('pre-data') && has('post-data'))) {
      e.complete = false;
      e.broken = 'its manifest exists but its dump does not';
    }
  }
  return entries;
}

/** Why a manifest's artifacts do not match the listing (missing, or another size), or undefined when they do. */
export function artifactProblem(entry: BackupEntry, manifest: Manifest): string | undefined {
  for (const a of manifest.artifacts) {
    const size = entry.sizes.get(a.key);
    if (size === undefined) return `its manifest names ${a.key}, which does not exist`;
    if (size !== a.bytes) return `its manifest records ${a.bytes} bytes for ${a.key}, but ${size} are stored`;
  }
  return undefined;
}

export async function readManifest(store: ObjectStore, entry: BackupEntry): Promise<Manifest> {
  const raw = await store.getJson(entry.manifestKey!);
  const problem = manifestProblem(raw);
  if (problem)
    throw new UserError(`The manifest of backup ${entry.backupId} (${entry.manifestKey}) is unreadable: ${problem}.`);
  return raw as Manifest;
}

/** The newest verification record of a backup: of its S3 restores (the default), or of its Neon point-in-time checks. */
export async function lastVerification(
  store: ObjectStore,
  entry: BackupEntry,
  source: 's3' | 'neon' = 's3',
): Promise<VerificationRecord | undefined> {
  const key = entry.verificationKeys.filter((k) => isNeonVerificationKey(k) === (source === 'neon')).at(-1);
  return key ? ((await store.getJson(key)) as VerificationRecord) : undefined;
}

/**
 * Reads manifests newest first until one whose artifacts match the listing, marking the ones before it broken
 * (a dump cut short or replaced), so that neither `latest` nor retention's "newest complete" floor lands on a backup
 * that cannot be restored. Usually one read.
 */
export async function markBrokenNewest(store: ObjectStore, entries: BackupEntry[]): Promise<void> {
  for (const e of [...entries].reverse()) {
    if (!e.complete) continue;
    const problem = artifactProblem(e, await readManifest(store, e));
    if (!problem) return;
    e.complete = false;
    e.broken = problem;
  }
}

/** The newest backup whose newest verification passed, reading newest first (usually one read). */
export async function newestVerified(store: ObjectStore, entries: BackupEntry[]): Promise<BackupEntry | undefined> {
  for (const e of [...entries].reverse()) {
    if (!e.complete || !e.verificationKeys.some((k) => !isNeonVerificationKey(k))) continue;
    if ((await lastVerification(store, e))?.status === 'passed') return e;
  }
  return undefined;
}

/** Resolves `latest` or an explicit id to a complete backup, with errors that say what exists instead. */
export function resolveBackup(entries: BackupEntry[], backupId: string, where: string): BackupEntry {
  const complete = entries.filter((e) => e.complete);
  if (backupId === 'latest') {
    const newest = complete[complete.length - 1];
    if (!newest) {
      const partial = entries.length
        ? ` (${entries.length} incomplete backup prefix(es) without a manifest were found)`
        : '';
      throw new UserError(
        `No complete backup under ${where}${partial}. Check \`s3-prefix\` and \`database\`, and that a backup has succeeded.`,
      );
    }
    return newest;
  }
  const found = entries.find((e) => e.backupId === backupId);
  if (!found) {
    const recent = complete
      .slice(-5)
      .map((e) => e.backupId)
      .reverse();
    throw new UserError(
      `Input \`backup-id\`: no backup "${backupId}" under ${where}. ${recent.length ? `Recent complete backups: ${recent.join(', ')}.` : 'There is no complete backup there.'} Use one of them or \`latest\`.`,
    );
  }
  if (found.broken) {
    throw new UserError(
      `Input \`backup-id\`: backup "${backupId}" is broken: ${found.broken}. It cannot be restored. Choose a complete backup or \`latest\`.`,
    );
  }
  if (!found.complete) {
    throw new UserError(
      `Input \`backup-id\`: backup "${backupId}" has no manifest: it is incomplete (it failed or is still running) and cannot be restored. Choose a complete backup or \`latest\`.`,
    );
  }
  return found;
}

/** One line of the catalogue (`list`): a backup with its state and its newest verifications. */
export interface CatalogueRow {
  backupId: string;
  startedAt: string;
  /** Complete and intact: a manifest whose artifacts are all stored. */
  complete: boolean;
  /** Why a backup with a manifest cannot be restored, e.g. its dump is missing. */
  broken: string | null;
  kind: string | null;
  bytes: number;
  rows: number | null;
  verified: 'passed' | 'failed' | null;
  verifiedAt: string | null;
  neonVerified: 'passed' | 'failed' | null;
  neonVerifiedAt: string | null;
}

/** Every backup of a stream, oldest first, with what its manifest and its newest verification records say. */
export async function catalogue(store: ObjectStore, prefix: string, database: string): Promise<CatalogueRow[]> {
  const rows: CatalogueRow[] = [];
  for (const e of await listBackups(store, prefix, database)) {
    const manifest = e.complete ? await readManifest(store, e) : undefined;
    const broken = e.broken ?? (manifest ? artifactProblem(e, manifest) : undefined);
    const v = await lastVerification(store, e);
    const nv = await lastVerification(store, e, 'neon');
    rows.push({
      backupId: e.backupId,
      startedAt: manifest?.startedAt ?? e.time.toISOString(),
      complete: e.complete && !broken,
      broken: broken ?? null,
      kind: manifest?.kind ?? null,
      bytes: e.bytes,
      rows: manifest?.totalRows ?? null,
      verified: v ? v.status : null,
      verifiedAt: v?.verifiedAt ?? null,
      neonVerified: nv ? nv.status : null,
      neonVerifiedAt: nv?.verifiedAt ?? null,
    });
  }
  return rows;
}
