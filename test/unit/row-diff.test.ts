import {
  chooseKey,
  diffConditions,
  foreignKeyOrder,
  formatKey,
  insertMissingSql,
  recoveredTableName,
  singleExpressionProblem,
  updateDifferingSql,
  type RecoverTable,
} from '../../src/lib/row-diff.js';

describe('singleExpressionProblem', () => {
  test.each([
    'id = 42',
    "created_at >= '2026-11-20' AND created_at < '2026-11-21'",
    "name = 'a;b -- c /* d */'",
    "name = 'it''s; fine'",
    "note = E'back\\\\slash \\' ; still inside'",
    '"odd;column" IS NOT NULL',
    '"a""b" = 1',
    'body = $$ ; -- $$',
    'body = $tag$ ; ) ( $tag$',
    'customer_id IN (SELECT id FROM customers WHERE (vip))',
    'price - 1 > 0',
    'a/b > 2',
  ])('%s is one expression', (text) => {
    expect(singleExpressionProblem(text)).toBeUndefined();
  });

  test.each([
    ['true; drop table x', /statement separator/],
    ['id = 1;', /statement separator/],
    ['id = 1 -- and more', /--` comment/],
    ['id = 1 /* x */', /\/\*` comment/],
    ['true) OR (true', /closes a parenthesis/],
    ['(id = 1', /parenthesis is not closed/],
    ["name = 'open", /string literal is not closed/],
    ["name = E'open\\'", /string literal is not closed/],
    ['"open = 1', /quoted identifier is not closed/],
    ['body = $x$ open', /dollar-quoted string is not closed/],
    ['   ', /empty/],
  ])('%s is refused', (text, problem) => {
    expect(singleExpressionProblem(text)).toMatch(problem);
  });
});

describe('chooseKey', () => {
  const pk = { kind: 'primary key', columns: ['id'], primary: true, notNull: true };
  const wide = { kind: 'unique constraint a_b', columns: ['a', 'b'], primary: false, notNull: true };
  const narrow = { kind: 'unique index c', columns: ['c'], primary: false, notNull: true };
  const nullable = { kind: 'unique constraint d', columns: ['d'], primary: false, notNull: false };
  test.each([
    [[wide, pk, narrow], pk],
    [[wide, narrow], narrow],
    [[nullable, wide], wide],
    [[nullable], undefined],
    [[], undefined],
  ])('%#', (candidates, expected) => {
    expect(chooseKey(candidates)).toBe(expected);
  });
});

describe('foreignKeyOrder', () => {
  test.each([
    [['lines', 'orders', 'customers'], { lines: ['orders'], orders: ['customers'] }, ['customers', 'orders', 'lines']],
    [['a', 'b'], {}, ['a', 'b']],
    [['tree'], { tree: ['tree'] }, ['tree']],
    // A cycle keeps the given order.
    [['x', 'y', 'z'], { x: ['y'], y: ['x'], z: [] }, ['z', 'x', 'y']],
    // A parent that is not recovered does not hold a child back.
    [['orders'], { orders: ['customers'] }, ['orders']],
  ])('%j with %j', (tables, refs, expected) => {
    expect(foreignKeyOrder(tables, new Map(Object.entries(refs)))).toEqual(expected);
  });
});

test('recoveredTableName: a UTC stamp without letters, within 63 bytes', () => {
  const at = new Date('2026-11-21T09:14:05.123Z');
  expect(recoveredTableName('customers', at)).toBe('customers__recovered_20261121_091405');
  const long = recoveredTableName('t'.repeat(60), at);
  expect(Buffer.byteLength(long)).toBe(63);
  expect(long.endsWith('__recovered_20261121_091405')).toBe(true);
  expect(Buffer.byteLength(recoveredTableName('ä'.repeat(30), at))).toBeLessThanOrEqual(63);
});

test('formatKey', () => {
  expect(formatKey(['id'], ['42'])).toBe('42');
  expect(formatKey(['order_id', 'line'], ['7', '2'])).toBe('(order_id=7, line=2)');
});

describe('SQL builders', () => {
  const t: RecoverTable = {
    live: '"public"."lines"',
    staging: '"pba_recover_0"',
    key: ['order_id', 'line'],
    columns: ['order_id', 'line', 'qty', 'id'],
    updatable: ['qty'],
  };
  test('missing rows are matched on every key column', () => {
    expect(diffConditions(t).missing).toBe(
      'NOT EXISTS (SELECT 1 FROM "public"."lines" l WHERE l."order_id" = s."order_id" AND l."line" = s."line")',
    );
  });
  test('values are compared as text, column by column', () => {
    expect(diffConditions(t).differing).toContain('(l."qty"::text IS DISTINCT FROM s."qty"::text))');
    expect(diffConditions({ ...t, updatable: [] }).differing).toContain('AND (false)');
  });
  test('inserts keep identity values only when asked', () => {
    expect(insertMissingSql(t, true)).toMatch(
      /^INSERT INTO "public"."lines" \("order_id", "line", "qty", "id"\) OVERRIDING SYSTEM VALUE\s+SELECT s."order_id"/,
    );
    expect(insertMissingSql(t, false)).not.toContain('OVERRIDING');
  });
  test('updates set only the updatable columns of rows that differ', () => {
    expect(updateDifferingSql(t)).toMatch(
      /^UPDATE "public"."lines" AS l SET \("qty"\) = ROW\(s."qty"\)\s+FROM "pba_recover_0" s WHERE l."order_id" = s."order_id" AND l."line" = s."line" AND \(l."qty"::text IS DISTINCT FROM s."qty"::text\)$/,
    );
  });
});
