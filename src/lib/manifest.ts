/** manifest.json, format version 1: see docs/FORMAT.md. Field names are an interface; never rename them. */
import { runUrlOf, type RunContext } from './run-context.js';

export type Compression = 'none' | 'gzip' | 'zstd';

export interface ArtifactEncryption {
  scheme: 'age';
  recipients: string[];
}

export interface Artifact {
  name: string;
  key: string;
  bytes: number;
  sha256: string;
  /** `custom`: pg_dump -Fc (the dump); `sql`: a plain SQL script (the globals). */
  format: 'custom' | 'sql';
  /**
   * Multi-artifact backups (`jobs` > 1): the pg_dump section this archive holds. Restore order: `pre-data`, then
   * every `data` artifact (any order, in parallel), then `post-data`. Absent: a whole dump (or the globals).
   */
  section?: 'pre-data' | 'data' | 'post-data';
  compression: Compression;
  compressionLevel?: number;
  /** zstd artifacts: the size once decompressed (what a restore keeps on disk). Absent in older manifests. */
  uncompressedBytes?: number;
  encryption: ArtifactEncryption | null;
  /**
   * How the upload's completion was confirmed: by the store's reply, or (`head`) by looking at the object after
   * the reply was lost and finding exactly the bytes sent. Absent in manifests written before it existed.
   */
  confirmedBy?: 'reply' | 'head';
}

/** Whether the roles and other globals (`pg_dumpall --globals-only`) were stored; `error` says why not. */
export interface GlobalsNote {
  status: 'stored' | 'failed' | 'off';
  error?: string;
}

export interface TableCount {
  schema: string;
  name: string;
  rows: number;
  /** True when the rows were excluded from the dump (`exclude-table-data`); `rows` is then 0. */
  dataExcluded?: boolean;
}

export interface Manifest {
  formatVersion: 1;
  backupId: string;
  kind: string;
  startedAt: string;
  /** When the exported snapshot (the data's point in time) was taken; RPO is measured from it. */
  snapshotAt?: string;
  /**
   * WAL position of the exported snapshot: pg_current_wal_lsn() just before exporting it (absent on standbys and
   * in older backups). When the position moved while the snapshot was taken, `snapshotLsnAfter` is the position
   * just after and `snapshotLsnApproximate` is true: a branch at `snapshotLsn` may differ slightly from the dump.
   */
  snapshotLsn?: string;
  snapshotLsnAfter?: string;
  snapshotLsnApproximate?: true;
  completedAt: string;
  source: {
    host: string;
    port: number;
    database: string;
    serverVersion: string;
    pgDumpVersion: string;
  };
  /** The stream name under the prefix (usually the database name). */
  database: string;
  artifacts: Artifact[];
  /** Absent in backups written before globals were captured. */
  globals?: GlobalsNote;
  /**
   * S3 Object Lock: every object of the backup (artifacts, RECOVERY.md, this manifest) was written in `mode` with
   * retain-until `retainUntil` (`startedAt` + `days`); verification records take the same date. Absent: no lock.
   */
  objectLock?: { mode: 'governance' | 'compliance'; days: number; retainUntil: string };
  tables: TableCount[];
  largeObjects: number;
  totalRows: number;
  github: { repository: string; runId: string; runUrl: string; sha: string } | null;
  tool: { name: string; version: string };
}

/** Validates a parsed manifest enough that readers can rely on the fields they use; returns a reason or null. */
export function manifestProblem(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'not a JSON object';
  const o = m as Record<string, unknown>;
  if (o.formatVersion !== 1) return `unsupported formatVersion ${String(o.formatVersion)}`;
  for (const f of ['backupId', 'kind', 'startedAt', 'completedAt']) {
    if (typeof o[f] !== 'string') return `field ${f} missing`;
  }
  if (Number.isNaN(Date.parse(o.startedAt as string))) return 'startedAt is not a time';
  if (!Array.isArray(o.artifacts) || o.artifacts.length === 0) return 'no artifacts';
  for (const a of o.artifacts as Record<string, unknown>[]) {
    if (typeof a.key !== 'string' || typeof a.bytes !== 'number' || typeof a.sha256 !== 'string') {
      return 'an artifact lacks key, bytes or sha256';
    }
  }
  if (!Array.isArray(o.tables)) return 'no tables list';
  return null;
}

/** The run a manifest or record names; null outside GitHub Actions (a laptop's CLI run names none). */
export function githubContext(run: RunContext): Manifest['github'] {
  if (!run.insideActions || !run.repository) return null;
  const runId = run.runId ?? '';
  return {
    repository: run.repository,
    runId,
    runUrl: runUrlOf(run.serverUrl, run.repository, runId),
    sha: run.sha ?? '',
  };
}
