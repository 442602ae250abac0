import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { declinedConnection, pgTls, tlsFailure } from '../../src/lib/pg-tls.js';

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
