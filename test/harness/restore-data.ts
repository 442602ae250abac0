import type { TestPostgres } from './postgres.js';
import { sleep } from './cancel.js';

/**
 * A small database whose restore takes a known while: every row COPY'd into `slow` passes a CHECK that sleeps
 * 30 ms, so that a test can act while pg_restore is busy without sleeping blindly itself.
 */
export const SLOW_SCHEMA_SQL = `
  CREATE FUNCTION public.slow_ok(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN true; END $$;
  CREATE TABLE public.accounts (id int PRIMARY KEY, name text NOT NULL, balance numeric);
  INSERT INTO public.accounts SELECT g, 'account ' || g, g * 1.5 FROM generate_series(1, 200) g;
  CREATE TABLE public.slow (id int PRIMARY KEY CHECK (public.slow_ok(id)), note text);
  INSERT INTO public.slow SELECT g, 'note ' || g FROM generate_series(1, 60) g;`;

/** Polls pg_stat_activity until a session matches `where` (SQL over its columns). */
export async function waitForActivity(pg: TestPostgres, where: string, timeoutMs = 60000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await pg.query(`SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (${where})`);
    if (rows.length) return;
    if (Date.now() > until) throw new Error(`no session matching ${where} in ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Row count and md5 of the sorted rows of every table: equal digests mean equal content. */
export async function tableDigests(pg: TestPostgres, database: string): Promise<Record<string, string>> {
  const tables = await pg.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
     ORDER BY 1`,
    database,
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const [r] = await pg.query<{ n: string; md5: string | null }>(
      `SELECT count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS md5 FROM ${t} x`,
      database,
    );
    out[t] = `${r!.n} rows, md5 ${r!.md5}`;
  }
  return out;
}
