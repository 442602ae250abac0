import {
  createDatabaseSql,
  databaseSettingsSql,
  derivedName,
  markerComment,
  MARKER_PREFIX,
  parseMarker,
  runLabel,
  staleDatabases,
  type DatabaseProps,
} from '../../src/core/restore-strategy.js';
import { Cancellation } from '../../src/lib/cancel.js';
import { runContext } from '../../src/lib/run-context.js';

const now = new Date('2026-11-27T12:00:00Z');
const run = runContext({ GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'a/b', GITHUB_RUN_ID: '9' });
const marked = (startedAt: string) => MARKER_PREFIX + JSON.stringify({ kind: 'restoring', run: 'r', startedAt });

describe('stale leftovers', () => {
  test.each([
    // name, comment, grace seconds, dropped?
    ['old marked', marked('2026-11-27T05:00:00Z'), 6 * 3600, true],
    ['young marked', marked('2026-11-27T11:00:00Z'), 6 * 3600, false],
    ['young marked, grace 0', marked('2026-11-27T11:59:59Z'), 0, true],
    ['unmarked', 'production shop', 0, false],
    ['no comment', null, 0, false],
    ['marker prefix with garbage', MARKER_PREFIX + '{nope', 0, false],
    ['marker without a time', MARKER_PREFIX + '{"kind":"scratch"}', 0, false],
    [
      "this run's own, grace 0",
      MARKER_PREFIX + JSON.stringify({ kind: 'scratch', run: runLabel(run), startedAt: '2026-11-27T05:00:00Z' }),
      0,
      false,
    ],
  ])('%s', (name, comment, grace, dropped) => {
    const out = staleDatabases([{ name, comment }], now, grace, run);
    expect(out.map((d) => d.name)).toEqual(dropped ? [name] : []);
  });

  test('a marker written now parses back', () => {
    expect(parseMarker(markerComment('scratch', now, run))).toMatchObject({
      kind: 'scratch',
      startedAt: now.toISOString(),
    });
  });
});

describe('names', () => {
  test.each([
    ['app', '__restoring_abc123', 'app__restoring_abc123'],
    ['x'.repeat(60), '__before_20261127T120000Z', 'x'.repeat(38) + '__before_20261127T120000Z'],
    ['é'.repeat(40), '__restoring_abc123', 'é'.repeat(22) + '__restoring_abc123'],
  ])('%s + %s', (name, suffix, expected) => {
    expect(derivedName(name, suffix)).toBe(expected);
    expect(Buffer.byteLength(derivedName(name, suffix))).toBeLessThanOrEqual(63);
  });
});

describe('database-level properties', () => {
  const props: DatabaseProps = {
    owner: 'app owner',
    encoding: 'UTF8',
    collate: 'en_US.UTF-8',
    ctype: 'en_US.UTF-8',
    localeProvider: 'i',
    locale: 'und-x-icu',
    connectionLimit: 20,
    tablespace: 'pg_default',
    comment: "it's ours",
    settings: [
      { role: '', name: 'search_path', value: '"$user", public' },
      { role: 'reader', name: 'statement_timeout', value: "5s'" },
    ],
    grants: [
      { grantee: 'PUBLIC', privilege: 'CONNECT', grantable: false },
      { grantee: 'reader', privilege: 'CREATE', grantable: true },
    ],
  };
  test('CREATE DATABASE keeps owner, encoding, locale provider and limits', () => {
    expect(createDatabaseSql('new', props)).toBe(
      `CREATE DATABASE "new" WITH TEMPLATE template0 OWNER "app owner" ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und-x-icu' CONNECTION LIMIT 20`,
    );
  });
  test('settings (list settings kept as stored) and exact grants', () => {
    expect(databaseSettingsSql('new', props)).toEqual([
      'ALTER DATABASE "new" SET "search_path" TO "$user", public',
      `ALTER ROLE "reader" IN DATABASE "new" SET "statement_timeout" TO '5s'''`,
      'REVOKE ALL ON DATABASE "new" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "new" FROM "app owner"',
      'GRANT CONNECT ON DATABASE "new" TO PUBLIC',
      'GRANT CREATE ON DATABASE "new" TO "reader" WITH GRANT OPTION',
    ]);
    expect(databaseSettingsSql('new', { ...props, settings: [], grants: null })).toEqual([]);
  });
});

describe('Cancellation', () => {
  test('undos run newest first, once, and a dismissed one not at all', async () => {
    const c = new Cancellation();
    const ran: string[] = [];
    const a = c.onCancel('a', async () => void ran.push('a'));
    c.onCancel('b', async () => void ran.push('b'));
    c.onCancel('c', async () => void ran.push('c')).dismiss();
    await a.run();
    const report = await c.cancel('received SIGINT');
    expect(ran).toEqual(['a', 'b']);
    expect(report.cleaned).toEqual(['b']);
    expect(c.signal.aborted).toBe(true);
    expect(() => c.throwIfCancelled()).toThrow(/SIGINT/);
  });

  test('a cancel waits for an atomic section before undoing', async () => {
    const c = new Cancellation();
    const order: string[] = [];
    c.onCancel('undo', async () => void order.push('undo'));
    let finish!: () => void;
    const section = c.atomically(() => new Promise<void>((r) => (finish = r)).then(() => void order.push('section')));
    const cancelling = c.cancel('received SIGINT');
    await new Promise((r) => setTimeout(r, 20));
    finish();
    await Promise.all([section, cancelling]);
    expect(order).toEqual(['section', 'undo']);
  });

  test('a failing undo is reported, not thrown', async () => {
    const c = new Cancellation();
    c.onCancel('dropped x', async () => {
      throw new Error('connection refused');
    });
    const r = await c.cancel('received SIGTERM');
    expect(r.failed).toEqual(['dropped x: not done (connection refused)']);
  });
});
