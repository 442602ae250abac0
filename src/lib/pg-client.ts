import pg from 'pg';
import { UserError } from './errors.js';
import { declinedConnection, tlsFailure } from './pg-tls.js';
import { CONNECT_TIMEOUT_MS, pgClientConfig, type PgTarget } from './pg-url.js';

/** Connects with node-postgres; connection mistakes become UserErrors that name the input and what to check. */
export async function connectPg(t: PgTarget, input: string, database = t.database): Promise<pg.Client> {
  try {
    return await connectOnce(t, database, t.tls.ssl);
  } catch (e) {
    // libpq's prefer (TLS, else plain) and allow (plain, else TLS).
    if (t.tls.fallback !== undefined && declinedConnection(e)) {
      try {
        return await connectOnce(t, database, t.tls.fallback);
      } catch (e2) {
        throw pgConnectError(e2, t, input, database);
      }
    }
    throw pgConnectError(e, t, input, database);
  }
}

async function connectOnce(t: PgTarget, database: string, ssl: PgTarget['tls']['ssl']): Promise<pg.Client> {
  const client = new pg.Client(pgClientConfig(t, database, ssl));
  // A server that goes away mid-session emits 'error' on the client; the failing query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
  return client;
}

export function pgConnectError(e: unknown, t: PgTarget, input: string, database: string): Error {
  const err = e as { code?: string; message?: string };
  const where = `${t.user}@${t.host}:${t.port}/${database}`;
  const tls = tlsFailure(e, `${t.host}:${t.port}`, input);
  if (tls) return new UserError(tls, { cause: e });
  switch (err.code) {
    case '28P01':
    case '28000':
      return new UserError(
        `Authentication failed for ${where} (${err.code}): check the user and password in \`${input}\`; a password with special characters must be URL-encoded.`,
        { cause: e },
      );
    case '3D000':
      return new UserError(
        `Database "${database}" does not exist on ${t.host}:${t.port}: check the database name in \`${input}\`.`,
        { cause: e },
      );
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
      return new UserError(
        `Cannot connect to ${t.host}:${t.port} (${err.code}): check the host and port in \`${input}\` and that the server accepts connections from this runner.`,
        { cause: e },
      );
  }
  if (err.code === 'ETIMEDOUT')
    return new UserError(
      `Connecting to ${t.host}:${t.port} timed out (ETIMEDOUT, no answer to the connection request): check the host and port in \`${input}\` and that the server accepts connections from this runner.`,
      { cause: e },
    );
  if (connectTimedOut(e)) {
    return new UserError(
      `Connecting to ${t.host}:${t.port} timed out after ${CONNECT_TIMEOUT_MS / 1000} s (the host took the connection but no PostgreSQL server answered): check the host and port in \`${input}\` and the firewall.`,
      { cause: e },
    );
  }
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * node-postgres gave up after connectionTimeoutMillis: it destroys the socket with `new Error('timeout expired')`
 * (pg/lib/client.js), a plain Error with no code or other field, so its text is the only signal. An error with a
 * code (ETIMEDOUT, a SQLSTATE such as 57014) is never this one.
 */
export function connectTimedOut(e: unknown): boolean {
  const err = (e ?? {}) as { code?: unknown; message?: string };
  return err.code === undefined && /timeout/i.test(err.message ?? '');
}

export function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}
