import { payloadHashOverride } from '../../src/lib/payload-signing.js';
import { BODY_SLICE_BYTES, bodySlices, withSlicedBody } from '../../src/lib/sliced-body.js';
import { parseCalendarDuration, parseDurationSeconds, subtractCalendarDuration } from '../../src/lib/duration.js';
import { UserError } from '../../src/lib/errors.js';
import { splitList } from '../../src/lib/inputs.js';
import {
  backupIdOfKey,
  backupIdTime,
  backupPrefix,
  compactUtc,
  databasePrefix,
  dumpFileName,
  isBackupId,
  newBackupId,
} from '../../src/lib/keys.js';
import { MemoryLogger } from '../../src/lib/log.js';
import { manifestProblem } from '../../src/lib/manifest.js';
import { matchesTable, schemaPattern, tablePattern } from '../../src/lib/pg-pattern.js';
import { libpqEnv, maskConnectionUrl, parsePgUrl, urlWithoutPassword } from '../../src/lib/pg-url.js';
import { parseToolVersion, serverMajor } from '../../src/lib/pgtools.js';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { encryptChunks, encryptStream, parseIdentities, parseRecipients } from '../../src/lib/age.js';
import { parseRetryAfter, withRetry } from '../../src/lib/retry.js';

describe('parseDurationSeconds', () => {
  test.each([
    ['30s', 30],
    ['10m', 600],
    ['26h', 93600],
    ['7d', 604800],
    ['2w', 1209600],
    ['1h30m', 5400],
    ['45', 45],
    ['1.5h', 5400],
  ])('%s = %d s', (text, seconds) => expect(parseDurationSeconds('x', text)).toBe(seconds));
  test.each(['', '5 minutes', '10x', 'h', '-5s', '1h 30m'])('"%s" is refused naming the input', (text) => {
    expect(() => parseDurationSeconds('max-age', text)).toThrow(/Input `max-age`: .* is not a duration/);
  });
});

describe('restic calendar durations', () => {
  test.each([
    ['1y2mo3d4h', { years: 1, months: 2, days: 3, hours: 4 }],
    ['90d', { years: 0, months: 0, days: 90, hours: 0 }],
    ['6mo', { years: 0, months: 6, days: 0, hours: 0 }],
  ])('%s', (text, want) => expect(parseCalendarDuration('keep-within', text)).toEqual(want));
  test.each(['', '1w', '3 days', '1.5d'])('"%s" is refused', (text) => {
    expect(() => parseCalendarDuration('keep-within', text)).toThrow(UserError);
  });
  test.each([
    ['6m', '`6mo`'],
    ['1y2m3d', '`1y2mo3d`'],
  ])('the ambiguous "%s" is refused with the spelling to use', (text, fix) => {
    expect(() => parseCalendarDuration('keep-within', text)).toThrow(/Input `keep-within`: .*months.*minutes/);
    expect(() => parseCalendarDuration('keep-within', text)).toThrow(fix);
  });
  test('subtracting months normalises like Go AddDate', () => {
    // 2026-03-31 minus one month is "2026-02-31", which Go normalises to 2026-03-03.
    const t = Date.UTC(2026, 2, 31, 12);
    expect(new Date(subtractCalendarDuration(t, { years: 0, months: 1, days: 0, hours: 0 })).toISOString()).toBe(
      '2026-03-03T12:00:00.000Z',
    );
    expect(new Date(subtractCalendarDuration(t, { years: 1, months: 0, days: 1, hours: 13 })).toISOString()).toBe(
      '2025-03-29T23:00:00.000Z',
    );
  });
});

describe('keys', () => {
  const start = new Date('2026-11-21T02:00:00.123Z');
  test('backup id starts with the UTC start time and sorts by time', () => {
    expect(compactUtc(start)).toBe('20261121T020000Z');
    expect(newBackupId(start, () => '3f9a')).toBe('20261121T020000Z-3f9a');
    expect(newBackupId(start)).toMatch(/^20261121T020000Z-[0-9a-f]{4}$/);
    expect(isBackupId('20261121T020000Z-3f9a')).toBe(true);
    expect(isBackupId('latest')).toBe(false);
    expect(backupIdTime('20261121T020000Z-3f9a')?.toISOString()).toBe('2026-11-21T02:00:00.000Z');
    expect(backupIdTime('nope')).toBeUndefined();
  });
  test.each([
    ['postgres-backups', 'app', 'postgres-backups/app/'],
    ['/a/b/', 'app', 'a/b/app/'],
    ['', 'app', 'app/'],
  ])('prefix %s + %s', (prefix, db, want) => expect(databasePrefix(prefix, db)).toBe(want));
  test('backup prefix and the backup id of a key', () => {
    expect(backupPrefix('p', 'app', '20261121T020000Z-3f9a')).toBe('p/app/20261121T020000Z-3f9a/');
    expect(backupIdOfKey('p/app/', 'p/app/20261121T020000Z-3f9a/manifest.json')).toBe('20261121T020000Z-3f9a');
    expect(backupIdOfKey('p/app/', 'p/app2/20261121T020000Z-3f9a/manifest.json')).toBeUndefined();
    expect(backupIdOfKey('p/app/', 'p/app/notes.txt')).toBeUndefined();
  });
  test.each([
    ['zstd', true, 'dump.pgdump.zst.age'],
    ['zstd', false, 'dump.pgdump.zst'],
    ['gzip', false, 'dump.pgdump'],
    ['none', true, 'dump.pgdump.age'],
  ] as const)('dump name for %s, encrypted=%s', (c, e, want) => expect(dumpFileName(c, e)).toBe(want));
});

describe('pg patterns', () => {
  test.each([
    ['public.audit_*', 'public', 'audit_log', true],
    ['public.audit_*', 'billing', 'audit_log', false],
    ['audit_*', 'billing', 'audit_log', true],
    ['Audit', 'public', 'audit', true],
    ['"Audit"', 'public', 'audit', false],
    ['"Audit"', 'public', 'Audit', true],
    ['"Mixed Case"."Odd ""Name"" Table"', 'Mixed Case', 'Odd "Name" Table', true],
    ['log?', 'public', 'logs', true],
    ['log?', 'public', 'log', false],
    ['a.b', 'a', 'b', true],
    ['"a.b"', 'public', 'a.b', true],
  ])('%s matches %s.%s: %s', (pattern, schema, name, want) => {
    expect(matchesTable(tablePattern(pattern), schema, name)).toBe(want);
  });
  test('schema patterns', () => {
    expect(schemaPattern('bill*').test('billing')).toBe(true);
    expect(schemaPattern('bill*').test('public')).toBe(false);
  });
});

describe('database URLs', () => {
  test('parses, masks the URL and the password, and keeps the password out of the argv form', () => {
    const log = new MemoryLogger();
    const url = 'postgresql://app%40corp:p%40ss%2Fw0rd@db.example.com:6543/app_db?sslmode=require&application_name=x';
    const t = parsePgUrl('database-url', url, log);
    expect(t).toMatchObject({
      host: 'db.example.com',
      port: 6543,
      database: 'app_db',
      user: 'app@corp',
      password: 'p@ss/w0rd',
    });
    expect(urlWithoutPassword(t)).toBe(
      'postgresql://app%40corp@db.example.com:6543/app_db?sslmode=require&application_name=x',
    );
    expect(libpqEnv(t).PGPASSWORD).toBe('p@ss/w0rd');
    log.info(`connecting with ${url} and p@ss/w0rd and p%40ss%2Fw0rd`);
    expect(log.lines.join('\n')).toBe('connecting with *** and *** and ***');
  });
  test('defaults: port 5432, user postgres, no password in env', () => {
    const t = parsePgUrl('database-url', 'postgres://localhost/app', new MemoryLogger());
    expect(t).toMatchObject({ port: 5432, user: 'postgres', password: '' });
    expect(libpqEnv(t).PGPASSWORD).toBeUndefined();
  });
  test('IPv6 hosts', () => {
    const t = parsePgUrl('database-url', 'postgres://u:p@[::1]:5433/app', new MemoryLogger());
    expect(t.host).toBe('::1');
    expect(urlWithoutPassword(t)).toBe('postgresql://u@[::1]:5433/app');
  });
  test.each([
    ['not a url', /is not a URL/],
    ['mysql://u:p@h/db', /has the scheme "mysql"/],
    ['postgres://u:p@h/', /names no database/],
    ['postgres://u:p@h/db?sslmode=maybe', /has sslmode=maybe/],
  ])('%s is refused', (url, re) => {
    const log = new MemoryLogger();
    expect(() => parsePgUrl('database-url', url, log)).toThrow(re);
  });
  test.each([
    [
      'a Neon URL',
      'postgresql://neondb_owner:npg_AbC123@ep-x-123.us-east-2.aws.neon.tech/neondb?sslmode=require',
      ['npg_AbC123'],
    ],
    ['percent-encoded', 'postgres://u:p%40ss%2Fw@h:5432/db', ['p%40ss%2Fw', 'p@ss/w']],
    ['an unencoded @ in the password', 'postgres://u:p@ss@h/db', ['p@ss']],
    ['a port that does not parse', 'postgres://u:hunter2@h:99999/db', ['hunter2']],
    ['no password', 'postgres://u@h/db', []],
  ])('maskConnectionUrl: %s', (_, url, passwords) => {
    const log = new MemoryLogger();
    maskConnectionUrl(url, log);
    log.info(['url', url, ...passwords].join(' '));
    expect(log.lines).toEqual([['url', '***', ...passwords.map(() => '***')].join(' ')]);
  });
  test('the password is masked even when the URL is refused', () => {
    const log = new MemoryLogger();
    expect(() => parsePgUrl('database-url', 'mysql://u:hunter2@h/db', log)).toThrow(UserError);
    log.info('hunter2');
    expect(log.lines).toEqual(['***']);
  });
});

describe('tool versions', () => {
  test.each([
    ['pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)', 15, '15.18'],
    ['pg_dump (PostgreSQL) 17.2', 17, '17.2'],
    ['pg_restore (PostgreSQL) 9.6.24', 9, '9.6.24'],
    ['pg_dump (PostgreSQL) 18beta1', 18, '18'],
  ])('%s', (text, major, version) => expect(parseToolVersion(text)).toEqual({ major, version }));
  test('garbage', () => expect(parseToolVersion('zsh: command not found')).toBeUndefined());
  test.each([
    [150018, 15],
    [170002, 17],
    [90624, 9],
  ])('server_version_num %d is major %d', (n, major) => expect(serverMajor(n)).toBe(major));
});

describe('lists and age keys', () => {
  test('lists split on commas and newlines, drop blanks and comments', () => {
    expect(splitList('a, b\n\n c # note\n# whole line\n')).toEqual(['a', 'b', 'c']);
  });
  const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  test('recipients', () => {
    expect(parseRecipients('age-recipients', [recipient])).toEqual([recipient]);
    expect(() => parseRecipients('age-recipients', [recipient.slice(0, -1)])).toThrow(/Input `age-recipients`/);
    expect(() => parseRecipients('age-recipients', ['ssh-ed25519 AAAA'])).toThrow(/not an age X25519 recipient/);
  });
  test('identities', () => {
    const id = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
    expect(parseIdentities('age-identity', `# created: 2026\n# public key: ${recipient}\n${id}\n`)).toEqual([id]);
    expect(() => parseIdentities('age-identity', '')).toThrow(/Input `age-identity`: is empty/);
    expect(() => parseIdentities('age-identity', recipient)).toThrow(/does not hold an age X25519 identity/);
  });
});

describe('manifest validation', () => {
  const good = {
    formatVersion: 1,
    backupId: '20261121T020000Z-3f9a',
    kind: 'scheduled',
    startedAt: '2026-11-21T02:00:00.123Z',
    completedAt: '2026-11-21T02:03:10.456Z',
    artifacts: [{ key: 'k', bytes: 1, sha256: 'x' }],
    tables: [],
  };
  test('a good manifest', () => expect(manifestProblem(good)).toBeNull());
  test.each([
    [null, 'not a JSON object'],
    [{ ...good, formatVersion: 2 }, 'unsupported formatVersion 2'],
    [{ ...good, backupId: undefined }, 'field backupId missing'],
    [{ ...good, startedAt: 'yesterday' }, 'startedAt is not a time'],
    [{ ...good, artifacts: [] }, 'no artifacts'],
    [{ ...good, artifacts: [{ key: 'k' }] }, 'an artifact lacks key, bytes or sha256'],
    [{ ...good, tables: undefined }, 'no tables list'],
  ])('%j: %s', (m, problem) => expect(manifestProblem(m)).toBe(problem));
});

describe('withRetry', () => {
  const run = async (
    errors: unknown[],
    classify: (e: unknown) => { retry: boolean; retryAfterMs?: number },
    attempts = 5,
  ) => {
    const slept: number[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        const e = errors[calls++];
        if (e) throw e;
        return 'ok';
      },
      {
        attempts,
        baseDelayMs: 100,
        maxDelayMs: 1000,
        classify,
        sleep: async (ms) => void slept.push(ms),
        random: () => 1,
      },
    ).catch((e: Error) => `threw ${e.message}`);
    return { result, slept, calls };
  };
  test('backs off exponentially, capped, and returns the first success', async () => {
    const r = await run([new Error('a'), new Error('b'), new Error('c'), new Error('d')], () => ({ retry: true }));
    expect(r).toEqual({ result: 'ok', slept: [100, 200, 400, 800], calls: 5 });
  });
  test('honours Retry-After when it is longer than the backoff', async () => {
    const r = await run([new Error('429')], () => ({ retry: true, retryAfterMs: 3000 }));
    expect(r.slept).toEqual([3000]);
  });
  test('stops at once on an error that must not be retried', async () => {
    expect(await run([new Error('400')], () => ({ retry: false }))).toEqual({
      result: 'threw 400',
      slept: [],
      calls: 1,
    });
  });
  test('gives up after the attempts', async () => {
    const r = await run([new Error('1'), new Error('2'), new Error('3')], () => ({ retry: true }), 3);
    expect(r).toEqual({ result: 'threw 3', slept: [100, 200], calls: 3 });
  });
  test.each([
    ['5', 5000],
    ['0', 0],
    [null, undefined],
    ['soon', undefined],
  ])('Retry-After %s', (v, ms) => expect(parseRetryAfter(v)).toBe(ms));
  test('Retry-After as an HTTP date', () => {
    expect(parseRetryAfter('Sat, 21 Nov 2026 02:00:10 GMT', Date.parse('2026-11-21T02:00:00Z'))).toBe(10000);
  });
});

describe('age encryption (header by age-encryption, payload sealed natively)', () => {
  // One directory for the age CLI's key files of this block, removed after it.
  const ageDir = mkdtempSync(path.join(os.tmpdir(), 'age-cli-'));
  afterAll(() => rmSync(ageDir, { recursive: true, force: true }));
  test.each([0, 1, 65535, 65536, 65537, 131072, 200000])('%d bytes decrypt back with age-encryption', async (size) => {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const plain = randomBytes(size);
    const encrypted = encryptStream(Readable.from(size ? [plain.subarray(0, 1000), plain.subarray(1000)] : []), [
      recipient,
    ]);
    const chunks: Buffer[] = [];
    for await (const c of encrypted) chunks.push(c as Buffer);
    const sealed = Buffer.concat(chunks);
    expect(sealed.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    // 16-byte tag per 64 KiB chunk, and at least one (final) chunk.
    expect(sealed.length).toBeGreaterThanOrEqual(size + 16 * Math.max(1, Math.ceil(size / 65536)));
    const d = new Decrypter();
    d.addIdentity(identity);
    expect(Buffer.from(await d.decrypt(new Uint8Array(sealed))).equals(plain)).toBe(true);
  });
  test.each([0, 65536, 131073])('%d bytes decrypt back with the age CLI', async (size) => {
    const identity = await generateX25519Identity();
    const dir = mkdtempSync(path.join(ageDir, 'key-'));
    writeFileSync(path.join(dir, 'key.txt'), identity + '\n');
    const plain = randomBytes(size);
    const sealed = Buffer.concat(
      await encryptStream(Readable.from(size ? [plain] : []), [await identityToRecipient(identity)]).toArray(),
    );
    const r = spawnSync('age', ['-d', '-i', path.join(dir, 'key.txt')], { input: sealed });
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.equals(plain)).toBe(true);
  });
  test.each([0, 1, 65536, 65537, 3 * 65536 + 12345])(
    'encryptChunks: %d bytes given as views of one reused buffer decrypt back with the age CLI',
    async (size) => {
      const identity = await generateX25519Identity();
      const dir = mkdtempSync(path.join(ageDir, 'key-'));
      writeFileSync(path.join(dir, 'key.txt'), identity + '\n');
      const plain = randomBytes(size);
      // As src/lib/reused-read.ts hands them: each chunk is a view of one buffer, overwritten once the next is asked
      // for. A sealer that kept a view would seal the scribble.
      const reused = Buffer.alloc(70000);
      const sizes = [1, 65535, 65536, 7, 70000, 3];
      async function* views() {
        for (let at = 0, i = 0; at < plain.length; i++) {
          const n = Math.min(sizes[i % sizes.length]!, plain.length - at);
          plain.copy(reused, 0, at, at + n);
          yield reused.subarray(0, n);
          reused.fill(0xee);
          at += n;
        }
      }
      const out: Buffer[] = [];
      for await (const c of encryptChunks(views(), [await identityToRecipient(identity)])) out.push(c);
      const r = spawnSync('age', ['-d', '-i', path.join(dir, 'key.txt')], {
        input: Buffer.concat(out),
        maxBuffer: 1 << 24,
      });
      expect(r.stderr.toString()).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout.equals(plain)).toBe(true);
    },
  );
  test('chunks of every size, split across the 64 KiB boundaries, decrypt back with the age CLI', async () => {
    const identity = await generateX25519Identity();
    const dir = mkdtempSync(path.join(ageDir, 'key-'));
    writeFileSync(path.join(dir, 'key.txt'), identity + '\n');
    const plain = randomBytes(3 * 65536 + 12345);
    // 1-byte, odd, exactly-64-KiB and larger-than-64-KiB pieces, so that a sealed chunk spans several of them.
    const sizes = [1, 65535, 65536, 7, 100000, 3];
    const pieces: Buffer[] = [];
    for (let at = 0, i = 0; at < plain.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, plain.length - at);
      pieces.push(plain.subarray(at, at + n));
      at += n;
    }
    const sealed = Buffer.concat(
      await encryptStream(Readable.from(pieces), [await identityToRecipient(identity)]).toArray(),
    );
    const r = spawnSync('age', ['-d', '-i', path.join(dir, 'key.txt')], { input: sealed, maxBuffer: 1 << 24 });
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.equals(plain)).toBe(true);
  });
  test("a child's short output read only after the child exited is whole", async () => {
    // Node drains a child's stdout into nothing when the child exits with nobody reading it; encryptStream must be
    // reading from the moment it returns, although the header is made asynchronously.
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const child = spawn('head', ['-c', '30000', '/dev/urandom'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const encrypted = encryptStream(child.stdout, [recipient]);
    await exited;
    await new Promise((r) => setTimeout(r, 100));
    const d = new Decrypter();
    d.addIdentity(identity);
    expect(Buffer.from(await d.decrypt(new Uint8Array(Buffer.concat(await encrypted.toArray())))).length).toBe(30000);
  });
  test('a header that cannot be made fails the stream', async () => {
    await expect(encryptStream(Readable.from([Buffer.alloc(10)]), ['age1notakey']).toArray()).rejects.toThrow();
  });
  test('a flipped byte is detected', async () => {
    const identity = await generateX25519Identity();
    const sealed = Buffer.concat(
      await encryptStream(Readable.from([randomBytes(70000)]), [await identityToRecipient(identity)]).toArray(),
    );
    sealed[sealed.length - 100]! ^= 1;
    const d = new Decrypter();
    d.addIdentity(identity);
    await expect(d.decrypt(new Uint8Array(sealed))).rejects.toThrow();
  });
});

describe('payloadHashOverride: what an upload signs instead of its SHA-256', () => {
  const crc = { 'x-amz-checksum-crc32': 'AAAAAA==' };
  test.each([
    ['UploadPart over https with a CRC32', 'UploadPartCommand', 'https:', crc, 'UNSIGNED-PAYLOAD'],
    ['PutObject over https with a CRC32', 'PutObjectCommand', 'https:', crc, 'UNSIGNED-PAYLOAD'],
    [
      'a checksum header in any case',
      'UploadPartCommand',
      'https:',
      { 'X-Amz-Checksum-Crc32': 'AAAAAA==' },
      'UNSIGNED-PAYLOAD',
    ],
    ['over https without a checksum', 'UploadPartCommand', 'https:', {}, undefined],
    ['over plain http with a CRC32', 'UploadPartCommand', 'http:', crc, undefined],
    ['a payload hash already set', 'PutObjectCommand', 'https:', { ...crc, 'x-amz-content-sha256': 'abc' }, undefined],
    [
      'a write without a body to spare (CompleteMultipartUpload)',
      'CompleteMultipartUploadCommand',
      'https:',
      crc,
      undefined,
    ],
    ['no command name', undefined, 'https:', crc, undefined],
  ])('%s', (_name, command, protocol, headers, expected) => {
    expect(payloadHashOverride(command, { protocol, headers })).toBe(expected);
  });
});

describe('request bodies written in slices (src/lib/sliced-body.ts)', () => {
  test.each([
    ['empty', 0, 1000, []],
    ['shorter than a slice', 999, 1000, [999]],
    ['exactly one slice', 1000, 1000, [1000]],
    ['one slice and one byte', 1001, 1000, [1000, 1]],
    ['three slices and a tail', 3123, 1000, [1000, 1000, 1000, 123]],
  ])('%s: the slices cover the body exactly, in order', (_name, length, size, lengths) => {
    // A view into a larger buffer, as a part is a view into its pooled buffer.
    const whole = randomBytes(length + 20);
    const body = whole.subarray(7, 7 + length);
    const slices = [...bodySlices(body, size)];
    expect(slices.map((s) => s.length)).toEqual(lengths);
    expect(Buffer.concat(slices).equals(body)).toBe(true);
    // Views, not copies.
    for (const s of slices) expect(s.buffer).toBe(whole.buffer);
  });

  async function read(body: unknown): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of body as Readable) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  test('every attempt gets a stream of its own over the same buffer; the request it was given is unchanged', async () => {
    class Request {
      constructor(
        public body: unknown,
        public headers: Record<string, string>,
      ) {}
    }
    const body = randomBytes(BODY_SLICE_BYTES * 2 + 5);
    const request = new Request(body, { 'content-length': String(body.length) });
    const first = withSlicedBody(request);
    const second = withSlicedBody(request);
    expect(first).not.toBe(request);
    expect(first).toBeInstanceOf(Request);
    expect(first.headers).toBe(request.headers);
    expect(request.body).toBe(body);
    expect(first.body).toBeInstanceOf(Readable);
    expect(first.body).not.toBe(second.body);
    expect((await read(first.body)).equals(body)).toBe(true);
    expect((await read(second.body)).equals(body)).toBe(true);
  });

  test.each([
    ['a body of one slice', () => randomBytes(BODY_SLICE_BYTES)],
    ['a string', () => 'x'.repeat(BODY_SLICE_BYTES * 2)],
    ['no body', () => undefined],
  ])('%s is passed on as it is', (_name, make) => {
    const request = { body: make() as unknown };
    expect(withSlicedBody(request)).toBe(request);
  });
});
