/**
 * Row-level recovery (`verify-restore` `mode: recover`, CLI `recover`): the chosen tables of a backup are restored
 * into a scratch database by verify's machinery (checksum first, row counts checked), compared with the live
 * tables by key, and the missing (and with `update`, the damaged) rows are copied back in ONE transaction.
 * Only keys and counts are ever reported: the rows may be patients' records.
 */
import { localFiles } from '../lib/files.js';
import path from 'node:path';
import type pg from 'pg';
import { inputError, UserError } from '../lib/errors.js';
import { compactUtc } from '../lib/keys.js';
import type { Logger } from '../lib/log.js';
import { copyBetween } from '../lib/pg-copy.js';
import { connectPg, quoteIdent } from '../lib/pg-client.js';
import {
  chooseKey,
  diffConditions,
  foreignKeyOrder,
  formatKey,
  insertMissingSql,
  onlyInLiveCondition,
  qualified,
  recoveredTableName,
  tableName,
  updateDifferingSql,
  type KeyCandidate,
  type RecoverTable,
} from '../lib/row-diff.js';
import type { QualifiedName } from '../lib/toc.js';
import { runVerify, type VerifyDeps, type VerifyOptions, type VerifyResult } from './verify.js';

export type OnConflict = 'skip' | 'update' | 'side-by-side';
export const ON_CONFLICT = ['skip', 'update', 'side-by-side'] as const;

export interface RecoverOptions {
  verify: VerifyOptions;
  /** One SQL expression selecting the backup's rows to consider; evaluated on the scratch copy only. */
  where?: string;
  onConflict: OnConflict;
  dryRun: boolean;
  /** Directory of the difference's JSON file. */
  diffDir: string;
}

export const SAMPLE_KEYS = 20;

export interface KeySample {
  count: number;
  /** Up to 20 keys, `{column: value}` as text. Keys only, never other values. */
  sampleKeys: Record<string, string | null>[];
}

export interface TableRecovery {
  table: string;
  /** The key rows are compared by, and where it comes from (`primary key`, `unique constraint x`). */
  key: string[] | null;
  keySource: string | null;
  /** Rows of the backup's table considered (those matching `where`). */
  backupRows: number;
  missing: KeySample | null;
  differing: KeySample | null;
  onlyInLive: KeySample | null;
  inserted: number;
  updated: number;
  unchanged: number;
  recoveredTable?: string;
  /** User triggers on the live table, which fired for the rows written. */
  triggers: string[];
  sequencesAdvanced: string[];
  columnsOnlyInLive: string[];
  columnsOnlyInBackup: string[];
}

export interface RecoverResult {
  backupId: string;
  database: string;
  onConflict: OnConflict;
  dryRun: boolean;
  filtered: boolean;
  tables: TableRecovery[];
  rowsInserted: number;
  rowsUpdated: number;
  rowsUnchanged: number;
  recoveredTables: string[];
  diffPath: string;
  verify: VerifyResult;
}

interface LiveColumn {
  name: string;
  generated: boolean;
  identity: '' | 'a' | 'd';
}

interface LiveTable {
  q: QualifiedName;
  oid: number;
  columns: LiveColumn[];
  key?: KeyCandidate;
  triggers: string[];
}

export async function runRecover(o: RecoverOptions, deps: VerifyDeps): Promise<RecoverResult> {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  const startedAt = now();
  const target = o.verify.target;
  const changesLive = !o.dryRun && o.onConflict !== 'side-by-side';
  if (changesLive && o.verify.confirm !== target.database) {
    throw inputError(
      'confirm',
      `recover with \`on-conflict: ${o.onConflict}\` writes into database "${target.database}"${o.verify.confirm ? ` (\`confirm\` is "${o.verify.confirm}")` : ''}`,
      `Set \`confirm\` to exactly \`${target.database}\` to go ahead, or run with \`dry-run: true\` first.`,
    );
  }

  // Everything that can be refused is refused before the backup is downloaded.
  const live = await connectPg(target, 'target-url');
  // A cancel closes the live connection: the server rolls back an unfinished recovery transaction.
  const liveUndo = deps.cancel?.onCancel(
    `closed the connection to "${target.database}" (an unfinished recovery is rolled back)`,
    () => live.end(),
  );
  let result: RecoverResult | undefined;
  try {
    const liveTables = new Map<string, LiveTable | undefined>();
    for (const q of o.verify.tables) liveTables.set(tableName(q), await describeLive(live, q));
    for (const [name, t] of liveTables) {
      if (o.onConflict === 'side-by-side') continue;
      if (!t) {
        throw inputError(
          'tables',
          `${name} does not exist in database "${target.database}"`,
          'Recover it with `on-conflict: side-by-side`, or bring the whole table back with `mode: restore` and `tables`.',
        );
      }
      if (!t.key) {
        throw inputError(
          'tables',
          `${name} has no primary key and no unique key on NOT NULL columns, so its rows cannot be matched with the backup's for \`on-conflict: ${o.onConflict}\``,
          `Recover ${name} with \`on-conflict: side-by-side\` (the backup's rows land in a new table next to it) and pick rows by hand.`,
        );
      }
    }
    const order = foreignKeyOrder(
      o.verify.tables.map(tableName),
      await foreignKeyParents(live, o.verify.tables.map(tableName)),
    );

    const verify = await runVerify(
      {
        ...o.verify,
        mode: 'recover',
        afterRestore: async (scratch) => {
          result = await recoverRows(o, live, scratch, liveTables, order, startedAt, log);
        },
      },
      deps,
    );
    if (verify.status !== 'passed' || !result) {
      throw new UserError(
        `Recovery from backup ${verify.backupId} stopped before anything was changed:\n- ${verify.failures.join('\n- ')}`,
      );
    }
    result.backupId = verify.backupId;
    result.verify = verify;
  } finally {
    liveUndo?.dismiss();
    await live.end().catch(() => undefined);
  }

  result.diffPath = path.join(o.diffDir, `recover-${compactUtc(startedAt)}.json`);
  (deps.files ?? localFiles).writeText(result.diffPath, JSON.stringify(diffDocument(result), null, 2) + '\n');
  return result;
}

/** The live table's columns, key and triggers; undefined when it does not exist. */
async function describeLive(live: pg.Client, q: QualifiedName): Promise<LiveTable | undefined> {
  const rel = (
    await live.query<{ oid: number }>(
      `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [q.schema, q.name],
    )
  ).rows[0];
  if (!rel) return undefined;
  const columns = (
    await live.query<{ name: string; generated: string; identity: '' | 'a' | 'd' }>(
      `SELECT attname::text AS name, attgenerated::text AS generated, attidentity::text AS identity
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [rel.oid],
    )
  ).rows.map((c) => ({ name: c.name, generated: c.generated !== '', identity: c.identity }));
  const candidates = (
    await live.query<{ primary: boolean; name: string; isconstraint: boolean; columns: string[]; notnull: boolean }>(
      `SELECT i.indisprimary AS primary, COALESCE(con.conname, ic.relname)::text AS name,
              con.conname IS NOT NULL AS isconstraint,
              array_agg(a.attname::text ORDER BY k.ord) AS columns, bool_and(a.attnotnull) AS notnull
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u')
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
         AND k.ord <= i.indnkeyatts
       GROUP BY i.indexrelid, i.indisprimary, con.conname, ic.relname`,
      [rel.oid],
    )
  ).rows.map((r): KeyCandidate => ({
    kind: r.primary ? 'primary key' : `unique ${r.isconstraint ? 'constraint' : 'index'} ${r.name}`,
    columns: r.columns,
    primary: r.primary,
    notNull: r.notnull,
  }));
  const triggers = (
    await live.query<{ name: string }>(
      `SELECT tgname::text AS name FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY 1`,
      [rel.oid],
    )
  ).rows.map((r) => r.name);
  return { q, oid: rel.oid, columns, key: chooseKey(candidates), triggers };
}

/** For each recovered table, the recovered tables it references by foreign key. */
async function foreignKeyParents(live: pg.Client, tables: string[]): Promise<Map<string, string[]>> {
  const rows = (
    await live.query<{ child: string; parent: string }>(
      `SELECT cn.nspname || '.' || c.relname AS child, pn.nspname || '.' || p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
       WHERE k.contype = 'f'`,
    )
  ).rows;
  const map = new Map<string, string[]>();
  for (const r of rows) {
    if (!tables.includes(r.child) || !tables.includes(r.parent)) continue;
    map.set(r.child, [...(map.get(r.child) ?? []), r.parent]);
  }
  return map;
}

/** The part that runs while the checked scratch copy exists: compare, then apply in one live transaction. */
async function recoverRows(
  o: RecoverOptions,
  live: pg.Client,
  scratch: pg.Client,
  liveTables: Map<string, LiveTable | undefined>,
  order: string[],
  startedAt: Date,
  log: Logger,
): Promise<RecoverResult> {
  // `where` runs on the scratch copy only, in a read-only session, as part of one prepared statement.
  await scratch.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
  const filter = o.where ? ` WHERE (${o.where})` : '';
  const byName = new Map(o.verify.tables.map((q) => [tableName(q), q]));
  for (const [i, name] of order.entries()) {
    try {
      await scratch.query({
        name: `pba_where_${i}`,
        text: `SELECT 1 FROM ${qualified(byName.get(name)!)}${filter} LIMIT 0`,
      });
    } catch (e) {
      throw inputError(
        'where',
        `cannot be evaluated on ${name} of the backup (${(e as Error).message})`,
        "Give one boolean SQL expression over columns that every table in `tables` has, e.g. `customer_id = 42` or `created_at >= '2026-11-20'`; recover tables with different columns in separate runs.",
      );
    }
  }

  const result: RecoverResult = {
    backupId: '',
    database: o.verify.target.database,
    onConflict: o.onConflict,
    dryRun: o.dryRun,
    filtered: Boolean(o.where),
    tables: [],
    rowsInserted: 0,
    rowsUpdated: 0,
    rowsUnchanged: 0,
    recoveredTables: [],
    diffPath: '',
    verify: undefined as unknown as VerifyResult,
  };
  const sequences: { table: string; sequence: string; column: string; staging: string }[] = [];

  await live.query('BEGIN');
  try {
    for (const [i, name] of order.entries()) {
      const q = byName.get(name)!;
      const liveTable = liveTables.get(name);
      const backupColumns = await scratchColumns(scratch, q);
      const t: TableRecovery = {
        table: name,
        key: liveTable?.key?.columns ?? null,
        keySource: liveTable?.key?.kind ?? null,
        backupRows: 0,
        missing: null,
        differing: null,
        onlyInLive: null,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        triggers: o.onConflict === 'side-by-side' ? [] : (liveTable?.triggers ?? []),
        sequencesAdvanced: [],
        columnsOnlyInLive: [],
        columnsOnlyInBackup: [],
      };
      result.tables.push(t);
      const backupNames = new Set(backupColumns.map((c) => c.name));
      const writable = (liveTable?.columns ?? []).filter((c) => !c.generated && backupNames.has(c.name));
      if (liveTable) {
        t.columnsOnlyInLive = liveTable.columns.filter((c) => !backupNames.has(c.name)).map((c) => c.name);
        t.columnsOnlyInBackup = backupColumns
          .filter((c) => !liveTable.columns.some((l) => l.name === c.name))
          .map((c) => c.name);
        const lostKey = (liveTable.key?.columns ?? []).filter((k) => !backupNames.has(k));
        if (lostKey.length && o.onConflict !== 'side-by-side') {
          throw new UserError(
            `${name}: the backup's table has no column ${lostKey.join(', ')} of the live table's ${liveTable.key!.kind}, so rows cannot be matched. Recover it with \`on-conflict: side-by-side\`.`,
          );
        }
      }

      // Stage the backup's rows in the live session: a temp table, or the side-by-side table itself.
      let staging: string;
      let stagedColumns: string[];
      if (o.onConflict === 'side-by-side') {
        t.recoveredTable = `${q.schema}.${recoveredTableName(q.name, startedAt)}`;
        staging = qualified({ schema: q.schema, name: recoveredTableName(q.name, startedAt) });
        stagedColumns = backupColumns.map((c) => c.name);
        await live.query(
          `CREATE TABLE ${staging} (${backupColumns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`,
        );
        result.recoveredTables.push(t.recoveredTable);
      } else {
        staging = quoteIdent(`pba_recover_${i}`);
        stagedColumns = writable.map((c) => c.name);
        await live.query(
          `CREATE TEMP TABLE ${staging} ON COMMIT DROP AS SELECT ${stagedColumns.map(quoteIdent).join(', ')} FROM ${qualified(q)} WITH NO DATA`,
        );
      }
      const cols = stagedColumns.map(quoteIdent).join(', ');
      t.backupRows = await copyBetween(
        scratch,
        `COPY (SELECT ${cols} FROM ${qualified(q)}${filter}) TO STDOUT`,
        live,
        `COPY ${staging} (${cols}) FROM STDIN`,
      ).catch((e: unknown) => {
        throw copyError(name, e);
      });

      if (liveTable?.key) {
        const rt: RecoverTable = {
          live: qualified(q),
          staging,
          key: liveTable.key.columns,
          columns: writable.map((c) => c.name),
          updatable: writable
            .filter((c) => !liveTable.key!.columns.includes(c.name) && c.identity !== 'a')
            .map((c) => c.name),
        };
        // Only-in-live is measured against every key of the backup's table, not only the rows `where` selects.
        let keys = staging;
        if (o.where) {
          keys = quoteIdent(`pba_recover_keys_${i}`);
          const keyCols = rt.key.map(quoteIdent).join(', ');
          await live.query(
            `CREATE TEMP TABLE ${keys} ON COMMIT DROP AS SELECT ${keyCols} FROM ${qualified(q)} WITH NO DATA`,
          );
          await copyBetween(
            scratch,
            `COPY (SELECT ${keyCols} FROM ${qualified(q)}) TO STDOUT`,
            live,
            `COPY ${keys} (${keyCols}) FROM STDIN`,
          ).catch((e: unknown) => {
            throw copyError(name, e);
          });
        }
        const cond = diffConditions(rt);
        t.missing = await sample(live, rt, staging, 's', cond.missing);
        t.differing = await sample(live, rt, staging, 's', cond.differing);
        t.onlyInLive = await sample(live, rt, rt.live, 'l', onlyInLiveCondition(rt, keys));
        const same = t.backupRows - t.missing.count - t.differing.count;

        if (o.onConflict === 'side-by-side') {
          t.inserted = t.backupRows;
        } else if (o.dryRun) {
          t.inserted = t.missing.count;
          t.updated = o.onConflict === 'update' ? t.differing.count : 0;
          t.unchanged = same + (o.onConflict === 'update' ? 0 : t.differing.count);
        } else {
          const overrideIdentity = liveTable.columns.some((c) => c.identity !== '' && rt.columns.includes(c.name));
          t.inserted = await applying(live, rt, name, cond.missing, () =>
            live.query(insertMissingSql(rt, overrideIdentity)),
          );
          if (o.onConflict === 'update') {
            t.updated = await applying(live, rt, name, cond.differing, () => live.query(updateDifferingSql(rt)));
          }
          t.unchanged = t.backupRows - t.inserted - t.updated;
          for (const c of rt.columns) {
            const seq = (
              await live.query<{ seq: string | null }>('SELECT pg_get_serial_sequence($1, $2) AS seq', [rt.live, c])
            ).rows[0]?.seq;
            if (seq) sequences.push({ table: name, sequence: seq, column: c, staging });
          }
        }
      } else {
        t.inserted = o.onConflict === 'side-by-side' ? t.backupRows : 0;
      }
      result.rowsInserted += t.inserted;
      result.rowsUpdated += t.updated;
      result.rowsUnchanged += t.unchanged;
      log.info(describeTable(t, o));
    }

    if (o.dryRun) {
      await live.query('ROLLBACK');
      log.info('Dry run: nothing was changed (the transaction was rolled back).');
    } else {
      // Deferred constraints are checked now, so that a violation aborts before sequences move.
      await applying(live, undefined, 'the recovered tables', undefined, () =>
        live.query('SET CONSTRAINTS ALL IMMEDIATE'),
      );
      // Sequences only move forward, and only past keys the backup brought back (setval is not transactional).
      for (const s of sequences) {
        const moved = (
          await live.query<{ v: string }>(
            `SELECT setval(${quoteLiteral(s.sequence)}, m)::text AS v
             FROM (SELECT max(${quoteIdent(s.column)}) AS m FROM ${s.staging}) x, ${s.sequence} seq,
                  pg_sequence ps
             WHERE ps.seqrelid = ${quoteLiteral(s.sequence)}::regclass AND ps.seqincrement > 0 AND m IS NOT NULL
               AND (m > seq.last_value OR (NOT seq.is_called AND m >= seq.last_value))`,
          )
        ).rows[0];
        if (moved) result.tables.find((t) => t.table === s.table)!.sequencesAdvanced.push(s.sequence);
      }
      await live.query('COMMIT');
      log.info(
        `Committed: ${result.rowsInserted} row(s) inserted, ${result.rowsUpdated} updated${result.recoveredTables.length ? `, into ${result.recoveredTables.join(', ')}` : ''}.`,
      );
    }
  } catch (e) {
    await live.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return result;
}

/**
 * A data error while copying names the table, column and SQLSTATE only: the server's own message quotes the value
 * that did not fit (`invalid input syntax for type integer: "..."`), and values are never printed.
 */
function copyError(name: string, e: unknown): Error {
  const err = e as pg.DatabaseError;
  if (!err.code?.startsWith('22') && !err.code?.startsWith('23')) return e as Error;
  return new UserError(
    `Recovery aborted and rolled back, nothing was changed: the backup's rows of ${name} do not fit the live table (SQLSTATE ${err.code}${err.column ? `, column ${err.column}` : ''}; the value is not shown). The column's type or constraints changed since the backup, or \`where\` fails on some row: recover with \`on-conflict: side-by-side\`, or narrow \`where\`.`,
  );
}

const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function scratchColumns(scratch: pg.Client, q: QualifiedName): Promise<{ name: string; type: string }[]> {
  return (
    await scratch.query<{ name: string; type: string }>(
      `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [q.schema, q.name],
    )
  ).rows;
}

/** Count and up to 20 keys of the rows of `from` (alias `alias`) matching `condition`. */
async function sample(
  live: pg.Client,
  t: RecoverTable,
  from: string,
  alias: string,
  condition: string,
): Promise<KeySample> {
  const keyCols = t.key.map((k) => `${alias}.${quoteIdent(k)}`);
  const count = Number(
    (await live.query<{ n: string }>(`SELECT count(*) AS n FROM ${from} ${alias} WHERE ${condition}`)).rows[0]!.n,
  );
  const rows = (
    await live.query<Record<string, string | null>>({
      text: `SELECT ${keyCols.map((k, i) => `${k}::text AS k${i}`).join(', ')} FROM ${from} ${alias} WHERE ${condition} ORDER BY ${keyCols.join(', ')} LIMIT ${SAMPLE_KEYS}`,
    })
  ).rows;
  return {
    count,
    sampleKeys: rows.map((r) => Object.fromEntries(t.key.map((k, i) => [k, r[`k${i}`] ?? null]))),
  };
}

/**
 * Runs one writing statement under a savepoint. A constraint violation becomes an error naming the constraint
 * and the first offending key (found on the staged rows, never printing their values); the caller rolls back.
 */
async function applying(
  live: pg.Client,
  t: RecoverTable | undefined,
  name: string,
  condition: string | undefined,
  statement: () => Promise<pg.QueryResult>,
): Promise<number> {
  await live.query('SAVEPOINT pba_apply');
  try {
    const r = await statement();
    await live.query('RELEASE SAVEPOINT pba_apply');
    return r.rowCount ?? 0;
  } catch (e) {
    const err = e as pg.DatabaseError;
    if (!err.code?.startsWith('23')) throw e;
    await live.query('ROLLBACK TO SAVEPOINT pba_apply');
    const key = t && condition ? await firstOffendingKey(live, t, condition, err).catch(() => undefined) : undefined;
    // Only these details are made of key columns alone; others ("Failing row contains ...") hold values.
    const detail = err.code === '23503' || err.code === '23505' ? err.detail : undefined;
    throw new UserError(
      `Recovery aborted and rolled back, nothing was changed: writing ${name} violates ${kindOf(err.code)}${err.constraint ? ` "${err.constraint}"` : ''}${err.table && `${err.schema}.${err.table}` !== name ? ` on ${err.schema}.${err.table}` : ''}${key ? `; first offending row: key ${key}` : ''}${detail ? ` (${detail})` : ''}. ${advice(err.code)}`,
    );
  }
}

function kindOf(code: string | undefined): string {
  switch (code) {
    case '23503':
      return 'foreign key constraint';
    case '23505':
      return 'unique constraint';
    case '23514':
      return 'check constraint';
    case '23502':
      return 'a NOT NULL constraint';
    case '23P01':
      return 'exclusion constraint';
    default:
      return 'an integrity constraint';
  }
}

function advice(code: string | undefined): string {
  if (code === '23503')
    return 'Recover the referenced (parent) rows too (add the table to `tables`), or narrow `where` to rows whose parents exist.';
  if (code === '23505')
    return 'A live row holds that unique value under another key; resolve it by hand, or recover `side-by-side`.';
  return "The backup's rows do not satisfy the live schema; recover `side-by-side` and pick rows by hand.";
}

async function firstOffendingKey(
  live: pg.Client,
  t: RecoverTable,
  condition: string,
  err: pg.DatabaseError,
): Promise<string | undefined> {
  let offending: string | undefined;
  if (err.code === '23502' && err.column) offending = `s.${quoteIdent(err.column)} IS NULL`;
  else if ((err.code === '23503' || err.code === '23514') && err.constraint) {
    const def = (
      await live.query<{ contype: string; def: string; cols: string[]; pcols: string[]; parent: string | null }>(
        `SELECT k.contype::text AS contype, pg_get_constraintdef(k.oid) AS def,
                ARRAY(SELECT attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                      JOIN pg_attribute ON attrelid = k.conrelid AND attnum = u.n ORDER BY u.o) AS cols,
                ARRAY(SELECT attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                      JOIN pg_attribute ON attrelid = k.confrelid AND attnum = u.n ORDER BY u.o) AS pcols,
                k.confrelid::regclass::text AS parent
         FROM pg_constraint k WHERE k.conrelid = $1::regclass AND k.conname = $2`,
        [t.live, err.constraint],
      )
    ).rows[0];
    if (def?.contype === 'f' && def.parent) {
      offending = `${def.cols.map((c) => `s.${quoteIdent(c)} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${def.parent} p WHERE ${def.cols.map((c, i) => `p.${quoteIdent(def.pcols[i]!)} = s.${quoteIdent(c)}`).join(' AND ')})`;
    } else if (def?.contype === 'c') {
      const expr = /^CHECK \((.*)\)( NOT VALID)?$/s.exec(def.def)?.[1];
      if (expr) offending = `NOT (${expr})`;
    }
  }
  if (!offending) return undefined;
  const keyCols = t.key.map((k) => `s.${quoteIdent(k)}`);
  const row = (
    await live.query<Record<string, string | null>>(
      `SELECT ${keyCols.map((k, i) => `${k}::text AS k${i}`).join(', ')} FROM ${t.staging} s
       WHERE ${condition} AND ${offending} ORDER BY ${keyCols.join(', ')} LIMIT 1`,
    )
  ).rows[0];
  return row
    ? formatKey(
        t.key,
        t.key.map((_, i) => row[`k${i}`] ?? null),
      )
    : undefined;
}

function describeTable(t: TableRecovery, o: RecoverOptions): string {
  const parts = [`${t.table}: ${t.backupRows} row(s) of the backup considered`];
  if (t.missing) {
    parts.push(
      `${t.missing.count} missing from live, ${t.differing!.count} differ, ${t.onlyInLive!.count} only in live (left untouched)`,
    );
  }
  if (t.recoveredTable) parts.push(`${o.dryRun ? 'would be copied' : 'copied'} into ${t.recoveredTable}`);
  else if (o.dryRun) parts.push(`would insert ${t.inserted}, update ${t.updated}`);
  else parts.push(`inserted ${t.inserted}, updated ${t.updated}`);
  return parts.join('; ');
}

/** The JSON document behind `diff-path`: counts and keys, never other values. */
export function diffDocument(r: RecoverResult): unknown {
  return {
    formatVersion: 1,
    backupId: r.backupId,
    database: r.database,
    onConflict: r.onConflict,
    dryRun: r.dryRun,
    filteredByWhere: r.filtered,
    rowsInserted: r.rowsInserted,
    rowsUpdated: r.rowsUpdated,
    rowsUnchanged: r.rowsUnchanged,
    recoveredTables: r.recoveredTables,
    tables: r.tables,
  };
}

export function recoverSummary(r: RecoverResult): string {
  const verb = r.dryRun ? 'Dry run of a recovery' : 'Recovered';
  const lines = [
    `## ${r.dryRun ? '🔎' : '✅'} ${verb} from backup \`${r.backupId}\` into \`${r.database}\` (\`on-conflict: ${r.onConflict}\`)`,
    '',
  ];
  if (r.dryRun) lines.push('**Dry run: nothing was changed.** The counts below are what the recovery would do.', '');
  if (r.filtered) lines.push('Only the backup rows matching `where` were considered.', '');
  lines.push(
    '| Table | Key | Backup rows | Missing from live | Values differ | Only in live (untouched) | Inserted | Updated | Unchanged |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const t of r.tables) {
    lines.push(
      `| \`${t.table}\`${t.recoveredTable ? ` → \`${t.recoveredTable}\`` : ''} | ${t.key ? `${t.key.join(', ')} (${t.keySource})` : 'none'} | ${t.backupRows} | ${t.missing?.count ?? '–'} | ${t.differing?.count ?? '–'} | ${t.onlyInLive?.count ?? '–'} | ${t.inserted} | ${t.updated} | ${t.unchanged} |`,
    );
  }
  lines.push('');
  for (const t of r.tables) {
    if (!t.key) continue;
    const show = (label: string, s: KeySample | null) =>
      s && s.count
        ? `- ${label} (${s.count}${s.count > s.sampleKeys.length ? `, first ${s.sampleKeys.length}` : ''}): ${s.sampleKeys
            .map(
              (k) =>
                `\`${formatKey(
                  t.key!,
                  t.key!.map((c) => k[c] ?? null),
                )}\``,
            )
            .join(', ')}`
        : undefined;
    const samples = [
      show('missing from live', t.missing),
      show('values differ', t.differing),
      show('only in live', t.onlyInLive),
    ].filter((s): s is string => s !== undefined);
    if (samples.length) lines.push(`**\`${t.table}\`** keys:`, ...samples, '');
  }
  const fired = r.tables.filter((t) => t.triggers.length && (t.inserted || t.updated));
  if (fired.length && r.onConflict !== 'side-by-side') {
    lines.push(
      `Triggers ${r.dryRun ? 'would fire' : 'fired'} as for any insert or update: ${fired.map((t) => `${t.table} (${t.triggers.join(', ')})`).join('; ')}.`,
      '',
    );
  }
  const advanced = r.tables.flatMap((t) => t.sequencesAdvanced);
  if (advanced.length) lines.push(`Sequences advanced past recovered keys: ${advanced.join(', ')}.`, '');
  if (r.onConflict === 'update' && r.rowsUpdated + r.tables.reduce((n, t) => n + (t.differing?.count ?? 0), 0) > 0) {
    lines.push(
      "⚠️ `update` writes the backup's values into every live row whose values differ: it also reverts legitimate changes made to those rows since the backup.",
      '',
    );
  }
  const drift = r.tables.filter((t) => t.columnsOnlyInLive.length || t.columnsOnlyInBackup.length);
  for (const t of drift) {
    lines.push(
      `Schema changed since the backup on \`${t.table}\`:${t.columnsOnlyInLive.length ? ` only in live: ${t.columnsOnlyInLive.join(', ')} (left to defaults / untouched);` : ''}${t.columnsOnlyInBackup.length ? ` only in the backup: ${t.columnsOnlyInBackup.join(', ')} (not recovered)` : ''}.`,
      '',
    );
  }
  lines.push(
    'Only keys are shown; values never leave the databases. The full difference is in the `diff-path` JSON file.',
  );
  return lines.join('\n');
}
