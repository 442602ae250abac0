import type { ClientConfig } from 'pg';
import { inputError } from './errors.js';
import type { Logger } from './log.js';
import { pgTls, type PgTls } from './pg-tls.js';

/** A parsed Postgres connection URL. The password is kept apart so that it never lands in argv or a log line. */
export interface PgTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** libpq query parameters (sslmode, sslrootcert, options, ...), passed to child processes as a URL. */
  params: URLSearchParams;
  /** How the Node client does TLS, with libpq's meaning of the same parameters (see pg-tls.ts). */
  tls: PgTls;
}

/**
 * Masks a connection URL and the password inside it (as written and percent-decoded), so that neither the URL nor
 * the bare password can reach a log. Works on text that does not parse as a URL too.
 */
export function maskConnectionUrl(value: string, log: Logger): void {
  log.secret(value);
  // Up to the last `@` before the host, as URL parsers read it: a password may hold an unencoded `@`.
  const password = /^[a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:(.*)@[^@/?#]*(?:[/?#]|$)/i.exec(value)?.[1];
  if (password) {
    log.secret(password);
    log.secret(safeDecode(password));
  }
}

/** Parses and masks a postgres:// URL. Masks the whole URL and the password (raw and decoded) before anything else. */
export function parsePgUrl(input: string, value: string, log: Logger): PgTarget {
  maskConnectionUrl(value, log);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // The port is the usual culprit (`:99999`, `:abc`); named without quoting, as the URL holds a password.
    const port = /^[a-z]+:\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#@]*):([^/?#]*)/i.exec(value)?.[1];
    if (port !== undefined && !(/^\d+$/.test(port) && Number(port) <= 65535))
      throw inputError(
        input,
        'has a port that is not a number from 1 to 65535',
        'Use e.g. `postgres://user:password@host:5432/database`.',
      );
    throw inputError(input, 'is not a URL', 'Use `postgres://user:password@host:5432/database?sslmode=require`.');
  }
  // The URL parser's view of the password, in case it differs from the pattern's (e.g. an `@` in the password).
  if (url.password) {
    log.secret(url.password);
    log.secret(safeDecode(url.password));
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw inputError(
      input,
      `has the scheme "${url.protocol.replace(/:$/, '')}"`,
      'Use a `postgres://` or `postgresql://` URL.',
    );
  }
  if (!url.hostname) throw inputError(input, 'has no host', 'Use `postgres://user:password@host:5432/database`.');
  const database = safeDecode(url.pathname.replace(/^\//, ''));
  if (!database)
    throw inputError(
      input,
      'names no database',
      'Add the database name after the host: `postgres://user@host:5432/app`.',
    );
  const port = url.port ? Number(url.port) : 5432;
  if (port === 0) throw inputError(input, 'has port 0', "Use the server's port, e.g. `5432`.");
  const params = new URLSearchParams(url.search);
  const tls = pgTls(input, value, params);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    database,
    user: safeDecode(url.username) || 'postgres',
    password: safeDecode(url.password),
    params,
    tls,
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The URL without its password: safe for argv (pg_dump --dbname) and for logs. */
export function urlWithoutPassword(t: PgTarget, database = t.database): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const query = t.params.toString();
  return `postgresql://${encodeURIComponent(t.user)}@${host}:${t.port}/${encodeURIComponent(database)}${query ? '?' + query : ''}`;
}

/** Environment for libpq tools: the password travels here, never in argv. */
export function libpqEnv(t: PgTarget): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: t.password };
  if (!t.password) delete env.PGPASSWORD;
  return env;
}

/** How long a connection may take before it is given up (a host that accepts TCP but never answers). */
export const CONNECT_TIMEOUT_MS = 30_000;

/** node-postgres configuration; `ssl` is the first attempt's TLS setting unless given (see `connectPg`). */
export function pgClientConfig(t: PgTarget, database = t.database, ssl = t.tls.ssl): ClientConfig {
  return {
    host: t.host,
    port: t.port,
    database,
    user: t.user,
    password: t.password,
    ssl,
    application_name: 'postgres-backup-actions',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
}
