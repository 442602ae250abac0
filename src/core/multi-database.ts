import { createHash } from 'node:crypto';
import { CancelledError } from '../lib/cancel.js';
import { errorMessage, isReported, UserError } from '../lib/errors.js';
import { isBackupId, prefixBase } from '../lib/keys.js';
import type { Logger } from '../lib/log.js';
import type { ObjectStore } from '../lib/s3.js';

/**
 * Several databases in one run: a loop around the single-database backup, verify and prune, one stream per
 * database (`<prefix>/<stream>/<backup-id>/`). A database that fails does not stop the others; the caller fails
 * the step at the end, naming every failure.
 */

/** Which databases (backup) or streams (verify, prune) a run covers. */
export type DatabaseSelection = { all: true; exclude: string[] } | { all: false; names: string[] };

const KEY_SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The stream name (an S3 key segment) of a database. Names of letters, digits, `.`, `_` and `-` (starting with a
 * letter or digit) are used as they are, so a stream keeps the name it has always had. Any other name maps to its
 * safe characters, every other run of characters replaced by `_`, plus `-` and the first 8 hex digits of the
 * SHA-256 of the UTF-8 name, so that two names never share a stream: `My "Db" ü` -> `My_Db-<8 hex>`. The real
 * name stays in the manifest (`source.database`).
 */
export function streamName(database: string): string {
  if (KEY_SAFE.test(database)) return database;
  const safe = database.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+|[._-]+$/g, '') || 'db';
  return `${safe}-${createHash('sha256').update(database, 'utf8').digest('hex').slice(0, 8)}`;
}

/** An `exclude-databases` entry: an exact name, or a pattern where `*` matches any characters and `?` one. */
export function nameMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[\\^$.+()[\]{}|]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(name);
}

/** One row of pg_database as seen by the connecting role. */
export interface ServerDatabase {
  name: string;
  template: boolean;
  allowConnections: boolean;
  canConnect: boolean;
}

export interface DatabasePlan {
  /** The databases to back up, in order. */
  selected: string[];
  /** `all` only: databases left out, with why (excluded names are left out silently, as asked). */
  skipped: { database: string; reason: string }[];
  /** An explicit list naming a database that cannot be backed up: failures, reported at the end. */
  refused: { database: string; reason: string }[];
}

/** Which databases a backup run covers, from the server's list. Pure; the order is the server's (by name). */
export function planDatabases(server: ServerDatabase[], selection: DatabaseSelection, user: string): DatabasePlan {
  const plan: DatabasePlan = { selected: [], skipped: [], refused: [] };
  const unreachable = (d: ServerDatabase) =>
    !d.allowConnections
      ? 'the database does not allow connections (datallowconn is false)'
      : !d.canConnect
        ? `role "${user}" has no CONNECT privilege on it`
        : undefined;
  if (selection.all) {
    for (const d of server) {
      if (d.template || selection.exclude.some((p) => nameMatches(p, d.name))) continue;
      const why = unreachable(d);
      if (why) plan.skipped.push({ database: d.name, reason: why });
      else plan.selected.push(d.name);
    }
    return plan;
  }
  for (const name of selection.names) {
    const d = server.find((s) => s.name === name);
    const why = !d
      ? 'no such database on the server (names are case-sensitive)'
      : d.template
        ? 'it is a template database'
        : unreachable(d);
    if (why) plan.refused.push({ database: name, reason: why });
    else plan.selected.push(name);
  }
  return plan;
}

export interface StreamFailure {
  /** The database (backup) or stream (verify, prune) that failed. */
  name: string;
  error: string;
  /** A bug rather than a user-facing failure: the step then reports it as one. */
  bug?: boolean;
}

export function failureOf(name: string, e: unknown): StreamFailure {
  return { name, error: errorMessage(e), ...(isReported(e) ? {} : { bug: true }) };
}

/** The error that fails the step at the end: every failure named, a bug only when one of them is. */
export function failuresError(what: string, total: number, failures: StreamFailure[]): Error {
  const text = `${what} failed for ${failures.length} of ${total}:\n${failures
    .map((f) => `- ${f.name}: ${f.error.replace(/\n/g, ' ')}`)
    .join('\n')}`;
  return failures.some((f) => f.bug) ? new Error(text) : new UserError(text);
}

/** The total of `f` over `items`: outputs that add up over databases. */
export const sumOf = <T>(items: T[], f: (t: T) => number): number => items.reduce((s, t) => s + f(t), 0);

/** Text safe inside a markdown table cell. */
export const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The streams under a prefix, for verify and prune with `all`: every `<prefix>/<stream>/` that holds at least one
 * `<backup-id>/` key (complete or not), so that unrelated keys beside the backups are never taken for a stream.
 */
export async function listStreams(store: ObjectStore, prefix: string): Promise<string[]> {
  const base = prefixBase(prefix);
  const streams = new Set<string>();
  for (const o of await store.listAll(base)) {
    const [stream, id] = o.key.slice(base.length).split('/');
    if (stream && id && isBackupId(id)) streams.add(stream);
  }
  return [...streams].sort();
}

/** The streams that verify or prune covers: a list maps database names to stream names; `all` reads the bucket. */
export async function selectStreams(
  store: ObjectStore,
  prefix: string,
  selection: DatabaseSelection,
): Promise<string[]> {
  if (!selection.all) return [...new Set(selection.names.map(streamName))];
  const where = `s3://${store.bucket}/${prefixBase(prefix)}`;
  let found: string[];
  try {
    found = await listStreams(store, prefix);
  } catch (e) {
    throw new UserError(`Listing the backup streams under ${where} failed, so nothing was done: ${errorMessage(e)}`, {
      cause: e,
    });
  }
  // An exclusion names a stream, or a database whose stream it is.
  const streams = found.filter((s) => !selection.exclude.some((p) => nameMatches(p, s) || streamName(p) === s));
  if (streams.length === 0) {
    throw new UserError(
      `Input \`databases\`: \`all\` found no backup stream under ${where}${found.length ? ` (all ${found.length} excluded by \`exclude-databases\`)` : ''}. Check \`s3-bucket\` and \`s3-prefix\`.`,
    );
  }
  return streams;
}

/** Runs `fn` for each database or stream in turn; a failure is recorded and the next one still runs. */
export async function forEach<T>(
  items: string[],
  log: Logger,
  label: (item: string) => string,
  fn: (item: string) => Promise<T>,
): Promise<{ done: { item: string; value: T }[]; failures: StreamFailure[] }> {
  const done: { item: string; value: T }[] = [];
  const failures: StreamFailure[] = [];
  for (const item of items) {
    try {
      done.push({ item, value: await log.group(label(item), () => fn(item)) });
    } catch (e) {
      // A cancelled step (the runner's SIGINT) stops the whole run, not just this database.
      if (e instanceof CancelledError) throw e;
      const f = failureOf(item, e);
      failures.push(f);
      log.error(`${label(item)} failed: ${f.error}`);
    }
  }
  return { done, failures };
}
