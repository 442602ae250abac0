import { inputError } from './errors.js';
import type { Artifact, Manifest } from './manifest.js';

/**
 * Parallel dumps (`jobs` > 1), pure: how many streams, which tables each dumps, what the artifacts are called and
 * in which order a restore takes them. See docs/FORMAT.md, "Multi-artifact backups".
 */

/** `jobs: auto` takes the CPU count, but never more streams than this (each is one server backend). */
export const AUTO_JOBS_CAP = 8;
export const MAX_JOBS = 64;

/** The `jobs` input of pgdump-to-s3: `auto`, or a whole number from 1 to 64. */
export function parseDumpJobs(raw: string | undefined, cpus: number): number {
  const v = (raw ?? '').trim();
  if (v === '' || v === '1') return 1;
  if (v.toLowerCase() === 'auto') return Math.max(1, Math.min(AUTO_JOBS_CAP, cpus));
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_JOBS)
    throw inputError(
      'jobs',
      `"${v}" is not \`auto\` or a whole number from 1 to ${MAX_JOBS}`,
      `Set \`jobs: auto\` (the CPU count, at most ${AUTO_JOBS_CAP}) or a number such as \`jobs: 4\`; 1 writes one dump.`,
    );
  return Number(v);
}

export interface SizedRelation {
  schema: string;
  name: string;
  /** pg_table_size: heap and TOAST, what pg_dump reads. */
  bytes: number;
}

export interface DataStream {
  /** `data-1` ... `data-N`. */
  name: string;
  tables: SizedRelation[];
  /** Only the first stream: the large objects and the sequences' values (`--large-objects`, `-t` on sequences). */
  extras: boolean;
  bytes: number;
}

/**
 * Splits the tables over at most `jobs` streams, balanced by size: largest first, each to the stream with the
 * fewest bytes so far (ties: the fewest tables, then the lower number). Never an empty stream, except the first when the database has no
 * table but has large objects or sequences (the data section must still carry them); no table and nothing else:
 * no data stream at all (pre-data and post-data hold everything).
 */
export function partitionTables(tables: SizedRelation[], jobs: number, extras: boolean): DataStream[] {
  const n = Math.max(0, Math.min(jobs, tables.length));
  const count = n === 0 && extras ? 1 : n;
  const streams: DataStream[] = Array.from({ length: count }, (_, i) => ({
    name: dataArtifactName(i + 1),
    tables: [],
    extras: i === 0 && extras,
    bytes: 0,
  }));
  const sorted = [...tables].sort(
    (a, b) => b.bytes - a.bytes || a.schema.localeCompare(b.schema) || a.name.localeCompare(b.name),
  );
  for (const t of sorted) {
    let best = streams[0]!;
    for (const s of streams)
      if (s.bytes < best.bytes || (s.bytes === best.bytes && s.tables.length < best.tables.length)) best = s;
    best.tables.push(t);
    best.bytes += t.bytes;
  }
  return streams;
}

export const PRE_DATA = 'pre-data';
export const POST_DATA = 'post-data';

export function dataArtifactName(i: number): string {
  return `data-${i}`;
}

/** The object's file name: `pre-data.pgdump.zst.age`, `data-3.pgdump.zst`, ... (like `dump.pgdump...`). */
export function sectionFileName(name: string, compression: 'none' | 'gzip' | 'zstd', encrypted: boolean): string {
  return `${name}.pgdump${compression === 'zstd' ? '.zst' : ''}${encrypted ? '.age' : ''}`;
}

/**
 * A `-t` pattern that matches exactly this one relation: both parts double-quoted (case, dots, `*`, `?` and any
 * other character literal), embedded double quotes doubled, as pg_dump's pattern rules read them.
 */
export function exactRelationPattern(schema: string, name: string): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${q(schema)}.${q(name)}`;
}

/**
 * The pg_dump arguments that select one data stream's share. The first stream (`extras`) also takes the large
 * objects and the sequences' values; with no relation to name it dumps the data section unrestricted (there is
 * no table data left to dump then, only the large objects).
 */
export function dataStreamArgs(
  s: DataStream,
  extras: { largeObjects: boolean; sequences: { schema: string; name: string }[] },
): string[] {
  const rel = [...s.tables, ...(s.extras ? extras.sequences : [])];
  return [
    '--section=data',
    ...(s.extras && extras.largeObjects ? ['--blobs'] : []),
    ...rel.map((t) => `--table=${exactRelationPattern(t.schema, t.name)}`),
  ];
}

export interface RestorePlan {
  /** Single-artifact backup: the one dump. */
  dump?: Artifact;
  /** Multi-artifact backup: pre-data, then data (any order, in parallel), then post-data. */
  preData?: Artifact;
  data: Artifact[];
  postData?: Artifact;
  globals?: Artifact;
}

/** Whether the manifest is of a parallel (`jobs` > 1) backup: its artifacts are sections, not one dump. */
export function isMultiArtifact(m: Pick<Manifest, 'artifacts'>): boolean {
  return m.artifacts.some((a) => a.name === PRE_DATA);
}

/** Which artifact a restore takes at which step. Throws when a multi-artifact manifest lacks a section. */
export function restorePlan(m: Pick<Manifest, 'artifacts'>): RestorePlan {
  const globals = m.artifacts.find((a) => a.name === 'globals');
  if (!isMultiArtifact(m)) {
    return { dump: m.artifacts.find((a) => a.name === 'dump') ?? m.artifacts[0]!, data: [], globals };
  }
  const preData = m.artifacts.find((a) => a.name === PRE_DATA)!;
  const postData = m.artifacts.find((a) => a.name === POST_DATA);
  if (!postData) throw new Error(`the manifest lists a ${PRE_DATA} artifact but no ${POST_DATA} artifact`);
  const data = m.artifacts
    .filter((a) => /^data-\d+$/.test(a.name))
    .sort((a, b) => Number(a.name.slice(5)) - Number(b.name.slice(5)));
  return { preData, data, postData, globals };
}
