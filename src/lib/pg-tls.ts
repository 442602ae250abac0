import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { parse as parseConnectionString } from 'pg-connection-string';
import { inputError } from './errors.js';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * How the Node client connects, with libpq's meaning of the URL's sslmode, sslrootcert, sslcert and sslkey, so that
 * the Node half of a backup (snapshot, counts) and the libpq half (pg_dump, pg_restore, which read the same URL)
 * agree:
 * - no sslmode means `prefer`, libpq's default; `prefer` tries TLS and falls back to a plain connection when the
 *   server has no TLS (or refuses the TLS connection); `allow` tries plain first, then TLS;
 * - `require` encrypts without verifying, unless a root certificate is given: then, like libpq, it checks the chain
 *   (as `prefer` does too); `verify-ca` checks the chain only; `verify-full` the chain and the host name;
 * - `sslrootcert`, `sslcert`, `sslkey` default to libpq's `~/.postgresql/root.crt`, `postgresql.crt`, `postgresql.key`
 *   when those exist; `sslrootcert=system` means the system's trusted roots (libpq 16+).
 * pg-connection-string (libpq compatibility mode) reads the files and maps the modes; the parts it lacks (the
 * default mode, the plain fallback, the root certificate under `prefer`, the default files) are added here.
 */
export interface PgTls {
  mode: SslMode;
  /** What the first connection attempt uses. */
  ssl: false | ConnectionOptions;
  /** What a second attempt uses when the first is declined (prefer: plain; allow: TLS), or undefined. */
  fallback?: false | ConnectionOptions;
}

function libpqDefaultFile(name: string): string | undefined {
  const file = path.join(process.env.HOME ?? os.homedir(), '.postgresql', name);
  return existsSync(file) ? file : undefined;
}

export function pgTls(input: string, url: string, params: URLSearchParams): PgTls {
  const raw = params.get('sslmode');
  if (raw !== null && !(SSL_MODES as readonly string[]).includes(raw)) {
    throw inputError(input, `has sslmode=${raw}`, `Use one of: ${SSL_MODES.join(', ')}.`);
  }
  const mode = (raw ?? 'prefer') as SslMode;
  if (mode === 'disable') return { mode, ssl: false };

  const files = new URLSearchParams();
  const systemRoots = params.get('sslrootcert') === 'system';
  const rootcert = systemRoots ? undefined : (params.get('sslrootcert') ?? libpqDefaultFile('root.crt'));
  const sslcert = params.get('sslcert') ?? libpqDefaultFile('postgresql.crt');
  const sslkey = params.get('sslkey') ?? libpqDefaultFile('postgresql.key');
  if (rootcert) files.set('sslrootcert', rootcert);
  if (sslcert && sslkey) {
    files.set('sslcert', sslcert);
    files.set('sslkey', sslkey);
  }
  if ((mode === 'verify-ca' || mode === 'verify-full') && !rootcert && !systemRoots) {
    throw inputError(
      input,
      `has sslmode=${mode} but no sslrootcert, and ~/.postgresql/root.crt does not exist`,
      `Add \`sslrootcert=/path/to/ca.pem\` (the CA that signed the server's certificate, e.g. AWS RDS's global-bundle.pem) to the URL, or \`sslrootcert=system\` for a publicly trusted certificate (needs libpq 16+).`,
    );
  }
  for (const [name, file] of files) {
    if (!existsSync(file)) {
      throw inputError(input, `names ${name}=${file}, which does not exist`, `Point ${name} at a readable PEM file.`);
    }
  }
  // pg-connection-string reads the files and gives libpq's meaning of the modes it knows.
  const libMode = systemRoots ? 'verify-full' : mode === 'allow' ? 'require' : mode;
  files.set('sslmode', libMode);
  let parsed: { ssl?: unknown };
  try {
    parsed = parseConnectionString(`postgres://h/d?${files.toString()}`, { useLibpqCompat: true });
  } catch (e) {
    throw inputError(
      input,
      `has TLS files that cannot be read (${(e as Error).message})`,
      'Check the paths and their permissions.',
    );
  }
  const ssl = { ...(parsed.ssl as ConnectionOptions) };
  if (systemRoots) {
    // The system's trusted roots (Node's bundled ones), and libpq 16 makes this verify-full.
    delete ssl.checkServerIdentity;
    ssl.rejectUnauthorized = true;
  } else if (rootcert && (mode === 'prefer' || mode === 'allow')) {
    // libpq checks the chain whenever a root certificate is present.
    ssl.rejectUnauthorized = true;
    ssl.checkServerIdentity = () => undefined;
  }
  if (mode === 'prefer') return { mode, ssl, fallback: false };
  if (mode === 'allow') return { mode, ssl: false, fallback: ssl };
  return { mode, ssl };
}

/** The fields node-postgres and Node put on a connection error: a SQLSTATE or a Node/OpenSSL error code. */
interface ConnectError {
  code?: string;
  message?: string;
}

function fields(e: unknown): { code: string | undefined; message: string } {
  const err = (e ?? {}) as ConnectError;
  return { code: typeof err.code === 'string' ? err.code : undefined, message: err.message ?? '' };
}

/**
 * The server answered 'N' to the SSLRequest: it has no TLS. node-postgres reports this as a plain Error without a
 * code ("The server does not support SSL connections", pg/lib/connection.js), so its text is the only signal.
 */
export function serverWithoutTls(e: unknown): boolean {
  const { code, message } = fields(e);
  return code === undefined && /does not support SSL/i.test(message);
}

/**
 * node-postgres's other SSLRequest failure: any answer but 'S' or 'N' ("There was an error establishing an SSL
 * connection", pg/lib/connection.js), again a plain Error without a code.
 */
export function sslRequestFailed(e: unknown): boolean {
  const { code, message } = fields(e);
  return code === undefined && /error establishing an SSL connection/i.test(message);
}

/**
 * SQLSTATE 28000 (invalid_authorization_specification) whose text names pg_hba.conf: no line matches this kind of
 * connection ("no pg_hba.conf entry for host ..., no encryption") or a reject line does. The SQLSTATE is shared with
 * other refusals (a role that may not log in, a missing client certificate) and the server sends no other field
 * that tells them apart, so the text does. A server whose lc_messages is not English falls through to the plain
 * authentication message.
 */
export function hbaRefused(e: unknown): boolean {
  const { code, message } = fields(e);
  return code === '28000' && /pg_hba\.conf/.test(message);
}

/** A 28000 refusal of a plain connection ("..., no encryption"): the server takes this connection only with TLS. */
export function hbaWantsTls(e: unknown): boolean {
  const { code, message } = fields(e);
  return code === '28000' && /no encryption/.test(message);
}

/**
 * A 28000 refusal about the client certificate ("connection requires a valid client certificate", "certificate
 * authentication failed for user", or a pg_hba line for SSL connections): 28000 is shared, the text tells these apart.
 */
export function clientCertRefused(e: unknown): boolean {
  const { code, message } = fields(e);
  return code === '28000' && /cert|SSL/i.test(message);
}

/** True when a connection attempt failed in a way that libpq's prefer/allow answers with the other kind. */
export function declinedConnection(e: unknown): boolean {
  // The server has no TLS ('N' to SSLRequest), or pg_hba.conf has no line for this kind of connection.
  return serverWithoutTls(e) || hbaRefused(e);
}

const CHAIN_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

/** Node's X.509 verification codes (the `code` of a certificate error, Node's tls docs) beyond CHAIN_ERRORS. */
const X509_ERRORS = new Set([
  ...CHAIN_ERRORS,
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CRL_SIGNATURE_FAILURE',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * The TLS handshake failed: Node's TLS and OpenSSL errors carry a code (ERR_SSL_* from OpenSSL's reason, ERR_OSSL_*
 * for a certificate or key OpenSSL cannot use, ERR_TLS_*, EPROTO, an X.509 verification code); node-postgres's own SSLRequest failure has none (sslRequestFailed); and a
 * socket closed mid-handshake is ECONNRESET, told from any other reset only by Node's text ("Client network socket
 * disconnected before secure TLS connection was established").
 */
export function tlsHandshakeFailed(e: unknown): boolean {
  const { code, message } = fields(e);
  if (code !== undefined && (/^ERR_(SSL|OSSL|TLS)_/.test(code) || code === 'EPROTO' || X509_ERRORS.has(code)))
    return true;
  if (code === 'ECONNRESET') return /before secure TLS connection was established/i.test(message);
  return sslRequestFailed(e);
}

/** A clear sentence for a TLS failure, or undefined when the error is not about TLS. */
export function tlsFailure(e: unknown, where: string, input: string): string | undefined {
  const { code, message: msg } = fields(e);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `The TLS certificate of ${where} is not valid for that host name (${msg}): sslmode=verify-full checks the host name in \`${input}\` against the certificate; connect with the name the certificate was issued for.`;
  }
  if (code && CHAIN_ERRORS.has(code)) {
    return `The TLS certificate of ${where} could not be verified (${code}: ${msg}): check that \`sslrootcert\` in \`${input}\` is the CA that signed the server's certificate (AWS RDS: the region's or the global bundle).`;
  }
  if (serverWithoutTls(e)) {
    return `${where} does not offer TLS, and \`${input}\` requires it (sslmode): enable ssl on the server, or lower sslmode.`;
  }
  if (hbaWantsTls(e)) {
    return `${where} refused a connection without TLS (${msg}): the server accepts only TLS connections; use sslmode=require (or verify-full with sslrootcert) in \`${input}\`.`;
  }
  if (clientCertRefused(e)) {
    return `${where} refused the connection (${msg}): check the client certificate (sslcert, sslkey) in \`${input}\`.`;
  }
  if (tlsHandshakeFailed(e)) {
    return `TLS negotiation with ${where} failed (${msg}): check sslmode and the certificate files in \`${input}\`.`;
  }
  return undefined;
}
