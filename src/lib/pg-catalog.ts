import type pg from 'pg';
import { quoteIdent } from './pg-client.js';
import { serverMajor } from './pgtools.js';

/** The one place that asks a server what it is and what user tables it holds. */

export interface ServerVersion {
  /** `15.8`, without the distribution suffix (`15.8 (Debian 15.8-0+deb12u1)`). */
  version: string;
  major: number;
  /** As the server says it, e.g. `15.8 (Debian 15.8-0+deb12u1)`. */
  full: string;
}

export async function serverVersion(client: pg.Client): Promise<ServerVersion> {
  const row = (
    await client.query<{ v: string; n: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
    )
  ).rows[0]!;
  return { version: row.v.split(' ')[0]!, major: serverMajor(Number(row.n)), full: row.v };
}

export interface UserTable {
  schema: string;
  name: string;
}

/**
 * The database's own tables: not the catalogs, TOAST or temporary schemas, and not tables an extension owns (PostGIS's
 * `spatial_ref_sys`: CREATE EXTENSION makes them, pg_dump leaves their rows out unless configured, so they are not the
 * user's data to count). `partitioned` adds partitioned parents (no rows of their own) for checks about names.
 */
export async function userTables(client: pg.Client, o: { partitioned?: boolean } = {}): Promise<UserTable[]> {
  return userRelations(client, o.partitioned ? ['r', 'p'] : ['r']);
}

/** The database's own sequences, by the same rule as userTables (an extension's sequences are the extension's). */
export async function userSequences(client: pg.Client): Promise<UserTable[]> {
  return userRelations(client, ['S']);
}

async function userRelations(client: pg.Client, kinds: readonly ('r' | 'p' | 'S')[]): Promise<UserTable[]> {
  return (
    await client.query<UserTable>(
      `
      SELECT n.nspname AS schema, c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = ANY ($1::"char"[])
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname !~ '^pg_(toast|temp)'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1, 2`,
      [kinds],
    )
  ).rows;
}

/** How many large objects the database holds (pg_dump writes them apart from the tables). */
export async function largeObjectCount(client: pg.Client): Promise<number> {
  return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM pg_largeobject_metadata')).rows[0]!.n);
}

/** The exact number of rows of one table, its partitions' or children's not included (each is counted itself). */
export async function exactRowCount(client: pg.Client, t: UserTable): Promise<number> {
  const r = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
  );
  return Number(r.rows[0]!.n);
}
