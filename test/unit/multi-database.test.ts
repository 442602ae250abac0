import { createHash } from 'node:crypto';
import { CancelledError } from '../../src/lib/cancel.js';
import { UserError } from '../../src/lib/errors.js';
import { InputReader } from '../../src/lib/inputs.js';
import { MemoryLogger } from '../../src/lib/log.js';
import { actionSpec, type InputName } from '../../src/spec.js';
import {
  failuresError,
  forEach,
  nameMatches,
  planDatabases,
  streamName,
  type ServerDatabase,
} from '../../src/core/multi-database.js';
import { readDatabaseSelection } from '../../src/handlers/inputs/databases.js';

const hash8 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

describe('streamName', () => {
  test.each([
    ['app', 'app'],
    ['App_2.prod-eu', 'App_2.prod-eu'],
    ['My "Db" ü', `My_Db-${hash8('My "Db" ü')}`],
    ['billing data', `billing_data-${hash8('billing data')}`],
    ['.hidden', `hidden-${hash8('.hidden')}`],
    ['..', `db-${hash8('..')}`],
    ['a/b', `a_b-${hash8('a/b')}`],
    ['ü', `db-${hash8('ü')}`],
  ])('%j -> %j', (name, stream) => {
    expect(streamName(name)).toBe(stream);
    expect(stream).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  });

  test('two names that differ only in unsafe characters get different streams', () => {
    expect(streamName('a b')).not.toBe(streamName('a:b'));
    expect(streamName('a b').startsWith('a_b-')).toBe(true);
  });
});

test.each([
  ['postgres', 'postgres', true],
  ['postgres', 'postgres2', false],
  ['test_*', 'test_1', true],
  ['test_*', 'prod', false],
  ['db?', 'db1', true],
  ['db?', 'db12', false],
  ['a.b', 'aXb', false],
  ['My "Db" ü', 'My "Db" ü', true],
])('nameMatches(%j, %j) is %s', (pattern, name, expected) => {
  expect(nameMatches(pattern, name)).toBe(expected);
});

const server: ServerDatabase[] = [
  { name: 'app', template: false, allowConnections: true, canConnect: true },
  { name: 'locked', template: false, allowConnections: true, canConnect: false },
  { name: 'frozen', template: false, allowConnections: false, canConnect: true },
  { name: 'postgres', template: false, allowConnections: true, canConnect: true },
  { name: 'template0', template: true, allowConnections: false, canConnect: true },
  { name: 'template1', template: true, allowConnections: true, canConnect: true },
  { name: 'test_1', template: false, allowConnections: true, canConnect: true },
];

describe('planDatabases', () => {
  test('all: templates left out silently, exclusions silently, unconnectable ones skipped with the reason', () => {
    const plan = planDatabases(server, { all: true, exclude: ['postgres', 'test_*'] }, 'bot');
    expect(plan.selected).toEqual(['app']);
    expect(plan.skipped).toEqual([
      { database: 'locked', reason: 'role "bot" has no CONNECT privilege on it' },
      { database: 'frozen', reason: 'the database does not allow connections (datallowconn is false)' },
    ]);
    expect(plan.refused).toEqual([]);
  });

  test('a list: kept in its order; missing, template and unconnectable names refused', () => {
    const plan = planDatabases(
      server,
      { all: false, names: ['test_1', 'app', 'nope', 'App', 'template1', 'locked'] },
      'bot',
    );
    expect(plan.selected).toEqual(['test_1', 'app']);
    expect(plan.refused.map((r) => [r.database, r.reason])).toEqual([
      ['nope', 'no such database on the server (names are case-sensitive)'],
      ['App', 'no such database on the server (names are case-sensitive)'],
      ['template1', 'it is a template database'],
      ['locked', 'role "bot" has no CONNECT privilege on it'],
    ]);
    expect(plan.skipped).toEqual([]);
  });
});

describe('readDatabaseSelection', () => {
  const read = (action: string, values: Record<string, string>) =>
    readDatabaseSelection(new InputReader(actionSpec(action), (n) => values[n] ?? '', new MemoryLogger()));

  test.each(['pgdump-to-s3', 'verify-restore', 'prune-retention'])('%s: lists, all, exclusions', (action) => {
    expect(read(action, {})).toBeUndefined();
    expect(read(action, { databases: 'app, billing\nanalytics\napp' })).toEqual({
      all: false,
      names: ['app', 'billing', 'analytics'],
    });
    expect(read(action, { databases: 'all', 'exclude-databases': 'postgres\nrdsadmin' })).toEqual({
      all: true,
      exclude: ['postgres', 'rdsadmin'],
    });
  });

  test.each([
    [{ databases: 'app', database: 'app' }, /Input `databases`: is set together with `database`/],
    [{ databases: 'all, app' }, /Input `databases`: `all` is combined with database names/],
    [{ 'exclude-databases': 'x' }, /Input `exclude-databases`: is set but `databases` is empty/],
    [{ databases: 'app', 'exclude-databases': 'x' }, /Input `exclude-databases`: only applies to `databases: all`/],
  ])('%j is an input error', (values, message) => {
    expect(() => read('pgdump-to-s3', values)).toThrow(UserError);
    expect(() => read('pgdump-to-s3', values)).toThrow(message);
  });
});

test('failuresError names every failure; a bug among them makes it a bug', () => {
  const e = failuresError('Backup', 3, [
    { name: 'nope', error: 'no such database' },
    { name: 'b', error: 'pg_dump exited 1:\nboom' },
  ]);
  expect(e).toBeInstanceOf(UserError);
  expect(e.message).toBe('Backup failed for 2 of 3:\n- nope: no such database\n- b: pg_dump exited 1: boom');
  expect(failuresError('Backup', 1, [{ name: 'x', error: 'y', bug: true }])).not.toBeInstanceOf(UserError);
});

describe('forEach', () => {
  test('a failure is recorded and the next item still runs; a bug is marked as one', async () => {
    const log = new MemoryLogger();
    const run = await forEach(
      ['a', 'b', 'c'],
      log,
      (x) => `Work on ${x}`,
      async (x) => {
        if (x === 'a') throw new UserError('no such database');
        if (x === 'b') throw new TypeError('undefined is not a function');
        return x.toUpperCase();
      },
    );
    expect(run.done).toEqual([{ item: 'c', value: 'C' }]);
    expect(run.failures).toEqual([
      { name: 'a', error: 'no such database' },
      { name: 'b', error: 'undefined is not a function', bug: true },
    ]);
    expect(log.lines).toContain('error: Work on a failed: no such database');
  });

  test('a cancelled step stops the loop: nothing after it runs', async () => {
    const seen: string[] = [];
    const cancelled = new CancelledError('SIGINT');
    await expect(
      forEach(
        ['a', 'b'],
        new MemoryLogger(),
        (x) => x,
        async (x) => {
          seen.push(x);
          throw cancelled;
        },
      ),
    ).rejects.toBe(cancelled);
    expect(seen).toEqual(['a']);
  });
});

describe('defaults come from the spec alone', () => {
  const read = (action: string, values: Record<string, string>) =>
    new InputReader(actionSpec(action), (n) => values[n] ?? '', new MemoryLogger());
  test.each<[string, InputName, number]>([
    ['pgdump-to-s3', 'lock-wait-timeout', 30],
    ['verify-restore', 'stale-grace', 6 * 3600],
    ['prune-retention', 'incomplete-grace', 24 * 3600],
    ['neon-snapshot', 'timeout', 600],
  ])('%s %s: empty means the spec default', (action, input, seconds) => {
    expect(read(action, {}).seconds(input)).toBe(seconds);
    expect(read(action, { [input]: '90s' }).seconds(input)).toBe(90);
  });
  test('an input without a spec default cannot be read with seconds() (a bug, not a user error)', () => {
    expect(() => read('verify-restore', {}).seconds('max-age')).toThrow(/spec\.ts: input max-age needs a default/);
  });
});
