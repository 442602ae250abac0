import { checkFreeSpace, diskPlan } from '../../src/core/artifact-fetch.js';
import type { Artifact, Manifest } from '../../src/lib/manifest.js';
import {
  dataStreamArgs,
  exactRelationPattern,
  isMultiArtifact,
  parseDumpJobs,
  partitionTables,
  restorePlan,
  sectionFileName,
  type SizedRelation,
} from '../../src/lib/parallel-plan.js';
import { matchesTable, tablePattern } from '../../src/lib/pg-pattern.js';

const t = (name: string, bytes: number, schema = 'public'): SizedRelation => ({ schema, name, bytes });

test.each([
  ['empty', undefined, 1],
  ['1', '1', 1],
  ['4', '4', 4],
  ['auto on 2 CPUs', 'auto', 2],
  ['AUTO', 'AUTO', 2],
  ['64', '64', 64],
])('jobs input: %s', (_name, raw, expected) => {
  expect(parseDumpJobs(raw, 2)).toBe(expected);
});

test('jobs: auto is capped at 8 CPUs', () => {
  expect(parseDumpJobs('auto', 96)).toBe(8);
});

test.each([['0'], ['65'], ['two'], ['1.5'], ['-2']])(
  'jobs input %s is refused, naming the input and the fix',
  (raw) => {
    expect(() => parseDumpJobs(raw, 2)).toThrow(/`jobs`.*auto.*jobs: 4/s);
  },
);

test.each([
  [
    'largest first, each to the lightest stream',
    [t('a', 100), t('b', 60), t('c', 50), t('d', 10)],
    2,
    [
      ['a', 'd'],
      ['b', 'c'],
    ],
  ],
  ['more jobs than tables: one stream per table', [t('a', 5), t('b', 7)], 8, [['b'], ['a']]],
  ['one job per table, equal sizes', [t('x', 1), t('y', 1), t('z', 1)], 3, [['x'], ['y'], ['z']]],
  ['ties broken by name (stable)', [t('b', 0), t('a', 0), t('c', 0)], 2, [['a', 'c'], ['b']]],
  ['no table: no data stream', [], 4, []],
])('partition: %s', (_name, tables, jobs, expected) => {
  const streams = partitionTables(tables, jobs, false);
  expect(streams.map((s) => s.tables.map((x) => x.name))).toEqual(expected);
  expect(streams.map((s) => s.name)).toEqual(expected.map((_, i) => `data-${i + 1}`));
});

test('partition: the first stream carries the extras (large objects, sequences), even with no table', () => {
  expect(partitionTables([t('a', 1), t('b', 2)], 2, true).map((s) => s.extras)).toEqual([true, false]);
  const [only, ...rest] = partitionTables([], 4, true);
  expect(rest).toEqual([]);
  expect(only).toMatchObject({ name: 'data-1', tables: [], extras: true });
});

test('partition: every table in exactly one stream, bytes balanced within the largest table', () => {
  const tables = Array.from({ length: 30 }, (_, i) => t(`t${i}`, ((i * 7919) % 1000) + 1));
  const streams = partitionTables(tables, 4, true);
  expect(streams.flatMap((s) => s.tables.map((x) => x.name)).sort()).toEqual(tables.map((x) => x.name).sort());
  const sizes = streams.map((s) => s.bytes);
  expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1000);
});

test.each([
  ['plain', 'public', 'visits'],
  ['mixed case', 'Sales', 'OrderLines'],
  ['dots, stars, question marks', 'a.b', 'x*y?.z'],
  ['quotes', 'we"ird', '"q"'],
  ['unicode and spaces', 'café', 'ünï côdé'],
  ['regex characters', 's$', '(t)|[u]^+'],
])('-t pattern for %s matches exactly that table', (_name, schema, name) => {
  const p = tablePattern(exactRelationPattern(schema, name));
  expect(matchesTable(p, schema, name)).toBe(true);
  expect(matchesTable(p, schema.toUpperCase() + 'x', name)).toBe(false);
  expect(matchesTable(p, schema, name + 'x')).toBe(false);
});

test('data stream arguments: the section, its tables, and large objects and sequences only in the first', () => {
  const [first, second] = partitionTables([t('Big', 9), t('small', 1)], 2, true);
  const extras = { largeObjects: true, sequences: [{ schema: 'public', name: 'small_id_seq' }] };
  expect(dataStreamArgs(first!, extras)).toEqual([
    '--section=data',
    '--blobs',
    '--table="public"."Big"',
    '--table="public"."small_id_seq"',
  ]);
  expect(dataStreamArgs(second!, extras)).toEqual(['--section=data', '--table="public"."small"']);
  expect(dataStreamArgs(first!, { largeObjects: false, sequences: [] })).toEqual([
    '--section=data',
    '--table="public"."Big"',
  ]);
});

test.each([
  ['pre-data', 'zstd', true, 'pre-data.pgdump.zst.age'],
  ['data-3', 'zstd', false, 'data-3.pgdump.zst'],
  ['post-data', 'gzip', false, 'post-data.pgdump'],
] as const)('artifact file name: %s %s encrypted=%s', (name, compression, encrypted, expected) => {
  expect(sectionFileName(name, compression, encrypted)).toBe(expected);
});

const art = (name: string, over: Partial<Artifact> = {}): Artifact => ({
  name,
  key: `p/${name}`,
  bytes: 100,
  sha256: 'x',
  format: 'custom',
  compression: 'zstd',
  encryption: null,
  uncompressedBytes: 1000,
  ...over,
});
const manifest = (artifacts: Artifact[]) => ({ artifacts }) as unknown as Manifest;

test('restore plan: single artifact', () => {
  const m = manifest([art('dump'), art('globals', { format: 'sql' })]);
  expect(isMultiArtifact(m)).toBe(false);
  expect(restorePlan(m)).toMatchObject({ dump: { name: 'dump' }, data: [], globals: { name: 'globals' } });
});

test('restore plan: multi-artifact, data artifacts in number order (data-10 after data-2)', () => {
  const m = manifest([
    art('post-data'),
    art('data-10'),
    art('pre-data'),
    art('data-2'),
    art('globals', { format: 'sql' }),
    art('data-1'),
  ]);
  const p = restorePlan(m);
  expect(isMultiArtifact(m)).toBe(true);
  expect(p.dump).toBeUndefined();
  expect([p.preData?.name, ...p.data.map((a) => a.name), p.postData?.name]).toEqual([
    'pre-data',
    'data-1',
    'data-2',
    'data-10',
    'post-data',
  ]);
});

test('restore plan: a multi-artifact manifest without post-data is refused', () => {
  expect(() => restorePlan(manifest([art('pre-data'), art('data-1')]))).toThrow(/no post-data/);
});

test('disk plan of a multi-artifact backup: only the pre-data and post-data archives, never the data', () => {
  const m = manifest([
    art('pre-data', { uncompressedBytes: 30 }),
    art('data-1', { uncompressedBytes: 1e12 }),
    art('post-data', { uncompressedBytes: 20 }),
  ]);
  expect(diskPlan(m)).toMatchObject({ needBytes: 50, exact: true, multi: true });
  expect(() => checkFreeSpace('/tmp/x', diskPlan(m), 40)).toThrow(/pre-data and post-data archives.*Free space/);
  expect(() => checkFreeSpace('/tmp/x', diskPlan(m), 40)).not.toThrow(/jobs/);
});
