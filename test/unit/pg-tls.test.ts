import { mkdtempSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { connectTimedOut } from '../../src/lib/pg-client.js';
import {
  clientCertRefused,
  declinedConnection,
  hbaRefused,
  hbaWantsTls,
  pgTls,
  serverWithoutTls,
  sslRequestFailed,
  tlsFailure,
  tlsHandshakeFailed,
} from '../../src/lib/pg-tls.js';

// libpq's meaning of sslmode and the certificate parameters, for the Node client (pure: files only).
const dir = mkdtempSync(path.join(os.tmpdir(), 'pba-tls-unit-'));
const pem = (name: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`);
  return file;
};
const ca = pem('ca.crt');
const cert = pem('client.crt');
const key = pem('client.key');
// No ~/.postgresql defaults leak in from the machine running the tests.
const home = process.env.HOME;
beforeAll(() => {
  process.env.HOME = dir;
});
afterAll(() => {
  process.env.HOME = home;
});

const tls = (query: string) => pgTls('database-url', `postgres://h/d?${query}`, new URLSearchParams(query));

describe('pgTls: what the Node client tries first and second', () => {
  test.each<[string, string, unknown, unknown]>([
    ['no sslmode = prefer: TLS unverified, then plain', '', { rejectUnauthorized: false }, false],
    ['prefer', 'sslmode=prefer', { rejectUnauthorized: false }, false],
    ['allow: plain, then TLS', 'sslmode=allow', false, { rejectUnauthorized: false }],
    ['disable: plain only', 'sslmode=disable', false, undefined],
    ['require: TLS unverified, no fallback', 'sslmode=require', { rejectUnauthorized: false }, undefined],
  ])('%s', (_label, query, first, second) => {
    const t = tls(query);
    if (first === false) expect(t.ssl).toBe(false);
    else expect(t.ssl).toMatchObject(first as object);
    if (second === undefined) expect(t.fallback).toBeUndefined();
    else if (second === false) expect(t.fallback).toBe(false);
    else expect(t.fallback).toMatchObject(second as object);
  });

  test('require + sslrootcert checks the chain (as libpq does) but not the host name', () => {
    const t = tls(`sslmode=require&sslrootcert=${ca}`);
    // Node verifies the chain unless rejectUnauthorized is false.
    expect((t.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized).not.toBe(false);
    expect((t.ssl as { ca?: unknown }).ca).toBeTruthy();
    expect((t.ssl as { checkServerIdentity?: (h: string, c: unknown) => unknown }).checkServerIdentity?.('x', {})).toBe(
      undefined,
    );
  });

  test('prefer + sslrootcert checks the chain, still falls back to plain when the server has no TLS', () => {
    const t = tls(`sslrootcert=${ca}`);
    expect(t.ssl).toMatchObject({ rejectUnauthorized: true });
    expect(t.fallback).toBe(false);
  });

  test('verify-ca checks the chain only; verify-full the chain and the host name', () => {
    const ca1 = tls(`sslmode=verify-ca&sslrootcert=${ca}`).ssl as { checkServerIdentity?: unknown };
    const full = tls(`sslmode=verify-full&sslrootcert=${ca}`).ssl as { checkServerIdentity?: unknown };
    expect((ca1 as { rejectUnauthorized?: boolean }).rejectUnauthorized).not.toBe(false);
    expect(typeof ca1.checkServerIdentity).toBe('function');
    expect((full as { rejectUnauthorized?: boolean }).rejectUnauthorized).not.toBe(false);
    expect((full as { ca?: unknown }).ca).toBeTruthy();
    expect(full.checkServerIdentity).toBeUndefined();
  });

  test('sslcert and sslkey are read; ~/.postgresql defaults are used when present', () => {
    const t = tls(`sslmode=require&sslcert=${cert}&sslkey=${key}`).ssl as { cert?: string; key?: string };
    expect(t.cert).toContain('client.crt');
    expect(t.key).toContain('client.key');
  });

  test('sslrootcert=system: the system roots, host name checked', () => {
    const t = tls('sslmode=verify-full&sslrootcert=system').ssl as { ca?: unknown; rejectUnauthorized?: boolean };
    expect(t.rejectUnauthorized).toBe(true);
    expect(t.ca).toBeUndefined();
  });

  test.each<[string, RegExp]>([
    ['sslmode=maybe', /Input `database-url`: has sslmode=maybe.*Use one of: disable, allow, prefer/],
    ['sslmode=verify-full', /has sslmode=verify-full but no sslrootcert.*sslrootcert=system/],
    ['sslmode=verify-ca', /has sslmode=verify-ca but no sslrootcert/],
    ['sslmode=require&sslrootcert=/nope/ca.pem', /names sslrootcert=\/nope\/ca\.pem, which does not exist/],
  ])('%s is refused, naming the input and the fix', (query, message) => {
    expect(() => tls(query)).toThrow(message);
  });
});

describe('declinedConnection and tlsFailure', () => {
  test.each<[string, unknown, boolean]>([
    ['server without TLS', new Error('The server does not support SSL connections'), true],
    [
      'no pg_hba line for this kind',
      Object.assign(new Error('no pg_hba.conf entry for host "127.0.0.1", no encryption'), { code: '28000' }),
      true,
    ],
    ['wrong password', Object.assign(new Error('password authentication failed'), { code: '28P01' }), false],
    ['a bad certificate is not a decline', Object.assign(new Error('x'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), false],
  ])('%s -> %s', (_label, e, declined) => {
    expect(declinedConnection(e)).toBe(declined);
  });

  test.each<[string, unknown, RegExp | undefined]>([
    ['host name', { code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: 'altnames' }, /not valid for that host name/],
    ['chain', { code: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'self signed' }, /could not be verified .*sslrootcert/],
    ['no TLS on the server', { message: 'The server does not support SSL connections' }, /does not offer TLS/],
    [
      'TLS-only server',
      { code: '28000', message: 'pg_hba.conf ..., no encryption' },
      /refused a connection without TLS/,
    ],
    ['not about TLS', { code: '28P01', message: 'password authentication failed' }, undefined],
  ])('%s', (_label, e, message) => {
    const text = tlsFailure(e, 'db:5432', 'database-url');
    if (message) expect(text).toMatch(message);
    else expect(text).toBeUndefined();
  });
});

describe('one predicate per condition, on the fields node-postgres and Node give', () => {
  const pgError = (code: string, message: string) => Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });
  const nodeError = (code: string, message: string) => Object.assign(new Error(message), { code });
  const noTls = new Error('The server does not support SSL connections');
  const badSslAnswer = new Error('There was an error establishing an SSL connection');
  const hbaPlain = pgError(
    '28000',
    'no pg_hba.conf entry for host "127.0.0.1", user "app", database "app", no encryption',
  );
  const hbaSsl = pgError(
    '28000',
    'no pg_hba.conf entry for host "127.0.0.1", user "app", database "app", SSL encryption',
  );
  const hbaReject = pgError('28000', 'pg_hba.conf rejects connection for host "127.0.0.1", user "app", no encryption');
  const needCert = pgError('28000', 'connection requires a valid client certificate');
  const noLogin = pgError('28000', 'role "app" is not permitted to log in');
  const tlsReset = nodeError(
    'ECONNRESET',
    'Client network socket disconnected before secure TLS connection was established',
  );
  const plainReset = nodeError('ECONNRESET', 'read ECONNRESET');
  const wrongVersion = nodeError('ERR_SSL_WRONG_VERSION_NUMBER', 'error:0A00010B:SSL routines::wrong version number');
  const keyMismatch = nodeError(
    'ERR_OSSL_X509_KEY_VALUES_MISMATCH',
    'error:05800074:x509 certificate routines::key values mismatch',
  );
  const expired = nodeError('CERT_HAS_EXPIRED', 'certificate has expired');
  const revoked = nodeError('CERT_REVOKED', 'certificate revoked');
  const refused = nodeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432');
  // Text alone, with a code that says otherwise, is not the condition.
  const mimic = nodeError('ECONNREFUSED', 'The server does not support SSL connections; ssl tls certificate');
  const password = pgError('28P01', 'password authentication failed for user "app" (pg_hba.conf line 3)');

  const predicates = {
    serverWithoutTls,
    sslRequestFailed,
    hbaRefused,
    hbaWantsTls,
    clientCertRefused,
    tlsHandshakeFailed,
  };
  test.each<[string, unknown, (keyof typeof predicates)[]]>([
    ["'N' to SSLRequest", noTls, ['serverWithoutTls']],
    ['another answer to SSLRequest', badSslAnswer, ['sslRequestFailed', 'tlsHandshakeFailed']],
    ['no pg_hba line for a plain connection', hbaPlain, ['hbaRefused', 'hbaWantsTls']],
    ['no pg_hba line for a TLS connection', hbaSsl, ['hbaRefused', 'clientCertRefused']],
    ['a pg_hba reject line', hbaReject, ['hbaRefused', 'hbaWantsTls']],
    ['no client certificate', needCert, ['clientCertRefused']],
    ['a role that may not log in (28000 too)', noLogin, []],
    ['reset during the handshake', tlsReset, ['tlsHandshakeFailed']],
    ['reset at another time', plainReset, []],
    ['OpenSSL: wrong version', wrongVersion, ['tlsHandshakeFailed']],
    ['OpenSSL: key and certificate do not match', keyMismatch, ['tlsHandshakeFailed']],
    ['an expired certificate', expired, ['tlsHandshakeFailed']],
    ['a revoked certificate', revoked, ['tlsHandshakeFailed']],
    ['connection refused', refused, []],
    ['TLS words under another code', mimic, []],
    ['a wrong password mentioning pg_hba.conf', password, []],
    ['not an error at all', undefined, []],
  ])('%s', (_label, e, expected) => {
    const hits = Object.entries(predicates)
      .filter(([, p]) => p(e))
      .map(([name]) => name);
    expect(hits).toEqual(expected);
  });

  test.each<[string, unknown, boolean]>([
    ["node-postgres's connectionTimeoutMillis", new Error('timeout expired'), true],
    ['ETIMEDOUT is told by its code instead', nodeError('ETIMEDOUT', 'connect ETIMEDOUT 10.0.0.1:5432'), false],
    ['a server timeout has a SQLSTATE', pgError('57014', 'canceling statement due to statement timeout'), false],
    ['something else', new Error('Connection terminated unexpectedly'), false],
  ])('connectTimedOut: %s', (_label, e, expected) => {
    expect(connectTimedOut(e)).toBe(expected);
  });
});

describe("node-postgres's own connection errors, from a fake server: the shapes the predicates rely on", () => {
  /** A server that answers the first packet (the SSLRequest) with `reply`, or never answers when it is undefined. */
  async function fakeServer(
    reply: ((s: net.Socket) => void) | undefined,
  ): Promise<{ port: number; close: () => void }> {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      if (reply) s.once('data', () => reply(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as AddressInfo).port,
      close: () => {
        for (const s of sockets) s.destroy();
        server.close();
      },
    };
  }
  async function connectError(reply: ((s: net.Socket) => void) | undefined, ssl: boolean): Promise<unknown> {
    const server = await fakeServer(reply);
    const client = new pg.Client({
      host: '127.0.0.1',
      port: server.port,
      user: 'u',
      database: 'd',
      ssl: ssl ? { rejectUnauthorized: false } : false,
      connectionTimeoutMillis: 300,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return undefined;
    } catch (e) {
      return e;
    } finally {
      await client.end().catch(() => undefined);
      server.close();
    }
  }

  test.each<[string, ((s: net.Socket) => void) | undefined, boolean, (e: unknown) => boolean]>([
    ["'N' to SSLRequest", (s) => s.write('N'), true, serverWithoutTls],
    ["'E' to SSLRequest", (s) => s.write('E'), true, sslRequestFailed],
    ["'S', then the socket closes mid-handshake", (s) => s.write('S', () => s.destroy()), true, tlsHandshakeFailed],
    ['no answer at all', undefined, false, connectTimedOut],
  ])('%s', async (_label, reply, ssl, predicate) => {
    const e = await connectError(reply, ssl);
    expect((e as Error)?.message).toEqual(expect.any(String));
    expect([predicate(e), (e as Error).message]).toEqual([true, (e as Error).message]);
  });
});
