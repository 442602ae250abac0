import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type pg from 'pg';
import { noSpace } from '../../src/core/artifact-fetch.js';
import { isLimitError } from '../../src/core/neon-snapshots.js';
import { createRoles, insufficientPrivilege } from '../../src/core/roles.js';
import { FaultError, UserError } from '../../src/lib/errors.js';
import { ping } from '../../src/lib/heartbeat.js';
import { MemoryLogger } from '../../src/lib/log.js';
import { NeonApi } from '../../src/lib/neon.js';
import { ChildFailure, childOutOfSpace } from '../../src/lib/process.js';

const sysError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('a full disk: Node says ENOSPC, zstd says so on its stderr', () => {
  const zstdTail = 'zstd: error 70 : Write error : cannot write block : No space left on device';
  test.each<[string, unknown, boolean, boolean]>([
    ["Node's own write", sysError('ENOSPC', 'ENOSPC: no space left on device, write'), true, false],
    ['zstd -d writing the file itself', new ChildFailure('zstd -d', `zstd -d: ${zstdTail}`, zstdTail), true, true],
    [
      'zstd -d failing otherwise',
      new ChildFailure('zstd -d', 'zstd -d: Data corruption detected', 'Data corruption detected'),
      false,
      false,
    ],
    ['the words in a plain message are not enough', new Error(`zstd -d: ${zstdTail}`), false, false],
    ['another errno', sysError('EPIPE', 'write EPIPE'), false, false],
    ['nothing', undefined, false, false],
  ])('%s', (_label, e, full, child) => {
    expect([noSpace(e), childOutOfSpace(e)]).toEqual([full, child]);
  });
});

describe("Neon's snapshot limit: a 4xx whose own message (not ours, which holds the name) says so", () => {
  let server: http.Server;
  let answer: { status: number; message: string };
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ request_id: 'r', code: '', message: answer.message }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(() => server.close());

  test.each<[string, number, string, string, boolean]>([
    ['the limit', 422, 'snapshot limit of 10 reached for project p', 'nightly', true],
    ['a quota', 400, 'project quota exceeded', 'nightly', true],
    ['a bad timestamp, for a snapshot named after limits', 400, 'invalid timestamp', 'max-quota-limit', false],
    ['not found', 404, 'snapshot limit of 10 reached', 'nightly', false],
    ['a locked project', 423, 'project is locked: operation limit', 'nightly', false],
  ])('%s (%d)', async (_label, status, message, name, limit) => {
    answer = { status, message };
    const neon = new NeonApi(
      {
        apiKey: 'k',
        apiHost: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        timeoutSeconds: 1,
        retryBaseMs: 1,
      },
      new MemoryLogger(),
    );
    const e = await neon.createSnapshot('p', 'br', { name }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(status === 423 ? FaultError : UserError);
    expect(isLimitError(e)).toBe(limit);
  });

  test('a reply from another service is never the Neon limit', () => {
    const e = new UserError('x', { reply: { service: 's3', status: 400, message: 'limit exceeded' } });
    expect(isLimitError(e)).toBe(false);
  });
});

describe('creating a role with BYPASSRLS: 42501 means "try without", whatever the text says', () => {
  const globals = 'CREATE ROLE auditor;\nALTER ROLE auditor WITH NOSUPERUSER INHERIT NOLOGIN BYPASSRLS;\n';
  const pgError = (code: string, message: string, detail?: string) =>
    Object.assign(new Error(message), { code, detail });
  const pg15 = pgError('42501', 'must be superuser to create bypassrls users');
  const pg16 = pgError(
    '42501',
    'permission denied to create role',
    'Only roles with the BYPASSRLS attribute may create roles with the BYPASSRLS attribute.',
  );
  const noCreateRole = pgError(
    '42501',
    'permission denied to create role',
    'Only roles with the CREATEROLE attribute may create roles.',
  );

  /** A client whose CREATE ROLE answers come from `answers` in order (undefined: success). */
  function fakeAdmin(answers: (Error | undefined)[]) {
    const sql: string[] = [];
    const admin = {
      query: async (text: string) => {
        sql.push(text);
        if (text.startsWith('CREATE ROLE')) {
          const a = answers.shift();
          if (a) throw a;
        }
        return { rows: [] };
      },
    } as unknown as pg.Client;
    return { admin, sql };
  }

  test.each<[string, (Error | undefined)[], RegExp | undefined, RegExp | undefined]>([
    ['granted', [undefined], undefined, undefined],
    ['PostgreSQL 15 refuses BYPASSRLS', [pg15], /cannot grant it \(must be superuser/, undefined],
    [
      'PostgreSQL 16 refuses BYPASSRLS (named in the detail only)',
      [pg16],
      /cannot grant it .*BYPASSRLS attribute/,
      undefined,
    ],
    [
      'no CREATEROLE at all',
      [noCreateRole, noCreateRole],
      undefined,
      /Could not create the role "auditor".*CREATEROLE/,
    ],
    ['another error', [pgError('42710', 'role "auditor" already exists')], undefined, /already exists/],
  ])('%s', async (_label, answers, warning, error) => {
    const { admin, sql } = fakeAdmin(answers);
    const log = new MemoryLogger();
    const created: string[] = [];
    const run = createRoles(admin, ['auditor'], globals, 'made by a test', created, log);
    if (error) {
      await expect(run).rejects.toThrow(error);
      expect(created).toEqual([]);
      return;
    }
    await run;
    expect(created).toEqual(['auditor']);
    const creates = sql.filter((s) => s.startsWith('CREATE ROLE'));
    expect(creates[creates.length - 1]).toBe(
      warning ? 'CREATE ROLE "auditor" NOLOGIN' : 'CREATE ROLE "auditor" NOLOGIN BYPASSRLS',
    );
    const warnings = log.lines.filter((l) => l.startsWith('warning: '));
    if (warning) expect(warnings.join('\n')).toMatch(warning);
    else expect(warnings).toEqual([]);
  });

  test.each<[unknown, boolean]>([
    [pg15, true],
    [pgError('28000', 'permission denied'), false],
    [sysError('EACCES', 'permission denied'), false],
    [undefined, false],
  ])('insufficientPrivilege %#', (e, expected) => {
    expect(insufficientPrivilege(e)).toBe(expected);
  });
});

describe("heartbeat: a timeout is told by our own deadline's signal", () => {
  test('a host that takes the connection and never answers', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const log = new MemoryLogger();
    try {
      const ok = await ping(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/x`, 'start', '', log, 200);
      expect(ok).toBe(false);
      expect(log.lines.join('\n')).toMatch(/ping failed \(no answer within 0\.2 s\)/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('a refused connection is not called a timeout', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const log = new MemoryLogger();
    expect(await ping(`http://127.0.0.1:${port}/x`, 'start', '', log, 5000)).toBe(false);
    expect(log.lines.join('\n')).not.toMatch(/no answer within/);
  });
});
