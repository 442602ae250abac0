import type pg from 'pg';

/** `X/Y` as pg_current_wal_lsn() prints it. */
export const LSN_PATTERN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

/** An LSN as a number of bytes into the WAL, for ordering (exact below 2^53, i.e. always in practice). */
export function lsnValue(lsn: string): number {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16);
}

/**
 * The server's WAL write position, or undefined where there is none to read (a standby in recovery, a server that
 * refuses the function). Called outside a transaction, or where a failure may not abort one.
 */
export async function currentWalLsn(client: pg.Client): Promise<string | undefined> {
  try {
    return (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  } catch {
    return undefined;
  }
}

/** The manifest fields for a snapshot exported between two WAL positions read just before and just after it. */
export function snapshotLsnFields(
  before: string,
  after: string,
): { snapshotLsn: string; snapshotLsnAfter?: string; snapshotLsnApproximate?: true } {
  // Equal: no WAL was written while the snapshot was taken, so no commit can fall between it and the LSN.
  if (before === after) return { snapshotLsn: before };
  return { snapshotLsn: before, snapshotLsnAfter: after, snapshotLsnApproximate: true };
}
