/**
 * Pure parts of row-level recovery: the `where` guard, the choice of key, foreign-key order, and the SQL that
 * compares and moves rows between a staging copy of the backup's rows and the live table. No I/O here.
 */
import { quoteIdent } from './pg-client.js';
import type { QualifiedName } from './toc.js';

/**
 * Why `text` is not a single SQL expression, or undefined when it may be one. Looks only outside string
 * literals, quoted identifiers and dollar quotes: a statement separator, a comment (which could hide the rest of
 * the wrapping query) or a parenthesis closed before it was opened (which could escape the `WHERE (...)` it is
 * placed in) are refused. The server then parses what is left as part of one prepared statement.
 */
export function singleExpressionProblem(text: string): string | undefined {
  if (text.trim() === '') return 'it is empty';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === "'") {
      // E'...' strings take backslash escapes; '' is an escaped quote in both kinds.
      const escapes = i > 0 && /[eE]/.test(text[i - 1]!) && !/[\w$]/.test(text[i - 2] ?? ' ');
      i++;
      for (; i < text.length; i++) {
        if (escapes && text[i] === '\\') i++;
        else if (text[i] === "'") {
          if (text[i + 1] === "'") i++;
          else break;
        }
      }
      if (i >= text.length) return 'a string literal is not closed';
    } else if (c === '"') {
      i++;
      for (; i < text.length; i++) {
        if (text[i] === '"') {
          if (text[i + 1] === '"') i++;
          else break;
        }
      }
      if (i >= text.length) return 'a quoted identifier is not closed';
    } else if (c === '$' && !/[\w$]/.test(text[i - 1] ?? ' ')) {
      const tag = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(text.slice(i));
      if (tag) {
        const end = text.indexOf(tag[0], i + tag[0].length);
        if (end < 0) return 'a dollar-quoted string is not closed';
        i = end + tag[0].length - 1;
      }
    } else if (c === ';') return 'it contains `;` (a statement separator)';
    else if (c === '-' && next === '-') return 'it contains a `--` comment';
    else if (c === '/' && next === '*') return 'it contains a `/*` comment';
    else if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth < 0) return 'it closes a parenthesis it did not open';
    }
  }
  if (depth !== 0) return 'a parenthesis is not closed';
  return undefined;
}

export interface KeyCandidate {
  /** `primary key` or `unique constraint <name>` / `unique index <name>`. */
  kind: string;
  columns: string[];
  primary: boolean;
  /** Every column NOT NULL. */
  notNull: boolean;
}

/** The primary key, else the narrowest unique key whose columns are all NOT NULL, else none. */
export function chooseKey(candidates: KeyCandidate[]): KeyCandidate | undefined {
  const pk = candidates.find((c) => c.primary);
  if (pk) return pk;
  return candidates
    .filter((c) => c.notNull && c.columns.length > 0)
    .sort((a, b) => a.columns.length - b.columns.length || a.kind.localeCompare(b.kind))[0];
}

export const tableName = (t: QualifiedName) => `${t.schema}.${t.name}`;
export const qualified = (t: QualifiedName) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

/**
 * Parents before children: `references` maps a table to the tables it references (among those recovered).
 * Tables in a reference cycle keep their given order after the others.
 */
export function foreignKeyOrder(tables: string[], references: Map<string, string[]>): string[] {
  const done: string[] = [];
  const pending = [...tables];
  while (pending.length) {
    const ready = pending.find((t) =>
      (references.get(t) ?? []).every((p) => p === t || done.includes(p) || !pending.includes(p)),
    );
    const next = ready ?? pending[0]!;
    done.push(next);
    pending.splice(pending.indexOf(next), 1);
  }
  return done;
}

/** `<table>__recovered_<yyyymmdd_hhmmss>` (UTC), shortened to PostgreSQL's 63-byte identifier limit. */
export function recoveredTableName(table: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '_');
  const suffix = `__recovered_${stamp}`;
  let base = table;
  while (Buffer.byteLength(base + suffix) > 63) base = base.slice(0, -1);
  return base + suffix;
}

/** A key for people: `42`, or `(order_id=7, line=2)` for a composite key. */
export function formatKey(columns: string[], values: (string | null)[]): string {
  if (columns.length === 1) return String(values[0]);
  return `(${columns.map((c, i) => `${c}=${values[i]}`).join(', ')})`;
}

/** What the SQL builders need to know of one table. */
export interface RecoverTable {
  live: string;
  staging: string;
  key: string[];
  /** Columns written to live: in both copies, not generated. */
  columns: string[];
  /** Columns an UPDATE may set: `columns` minus the key and GENERATED ALWAYS identity columns. */
  updatable: string[];
}

const ids = (cols: string[]) => cols.map(quoteIdent).join(', ');
const keyMatch = (t: RecoverTable, a: string, b: string) =>
  t.key.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' AND ');
/** Compares as text, so that types without an equality operator (json, point, xml) compare too. */
const valuesDiffer = (t: RecoverTable, a: string, b: string) =>
  t.updatable.length === 0
    ? 'false'
    : t.updatable.map((c) => `${a}.${quoteIdent(c)}::text IS DISTINCT FROM ${b}.${quoteIdent(c)}::text`).join(' OR ');

/** The conditions on staging row `s` for the three kinds of difference (only-in-live is on live row `l`). */
export function diffConditions(t: RecoverTable): { missing: string; differing: string; same: string } {
  const exists = `EXISTS (SELECT 1 FROM ${t.live} l WHERE ${keyMatch(t, 'l', 's')}`;
  return {
    missing: `NOT ${exists})`,
    differing: `${exists} AND (${valuesDiffer(t, 'l', 's')}))`,
    same: `${exists} AND NOT (${valuesDiffer(t, 'l', 's')}))`,
  };
}

/** Live rows whose key the backup's table (`keys`: a table of its keys) does not have. */
export function onlyInLiveCondition(t: RecoverTable, keys: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${keys} s WHERE ${keyMatch(t, 's', 'l')})`;
}

/** Inserts the staged rows whose key is missing from live; identity values are kept. */
export function insertMissingSql(t: RecoverTable, overrideIdentity: boolean): string {
  return `INSERT INTO ${t.live} (${ids(t.columns)})${overrideIdentity ? ' OVERRIDING SYSTEM VALUE' : ''}
    SELECT ${t.columns.map((c) => `s.${quoteIdent(c)}`).join(', ')} FROM ${t.staging} s WHERE ${diffConditions(t).missing}`;
}

/** Writes the staged values into live rows with the same key whose values differ. */
export function updateDifferingSql(t: RecoverTable): string {
  return `UPDATE ${t.live} AS l SET (${ids(t.updatable)}) = ROW(${t.updatable.map((c) => `s.${quoteIdent(c)}`).join(', ')})
    FROM ${t.staging} s WHERE ${keyMatch(t, 'l', 's')} AND (${valuesDiffer(t, 'l', 's')})`;
}
