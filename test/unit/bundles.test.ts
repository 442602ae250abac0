import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { repoRoot } from '../harness/run-action.js';

const BUNDLES = [
  'pgdump-to-s3',
  'verify-restore',
  'prune-retention',
  'neon-snapshot',
  'open-failure-issue',
  'backup-report',
  'cli',
];

interface RawMap {
  version: number;
  sources: string[];
  mappings: string;
  sourcesContent?: unknown;
}

describe.each(BUNDLES)('dist/%s', (name) => {
  const dir = path.join(repoRoot, 'dist', name);

  test('loads the source-map register first and ships a map without the sources', () => {
    const js = readFileSync(path.join(dir, 'index.js'), 'utf8').replace(/^#!.*\n/, '');
    expect(js.startsWith("import './sourcemap-register.cjs';")).toBe(true);
    expect(existsSync(path.join(dir, 'sourcemap-register.cjs'))).toBe(true);
    expect(js.trimEnd().endsWith('//# sourceMappingURL=index.js.map')).toBe(true);
    const map = JSON.parse(readFileSync(path.join(dir, 'index.js.map'), 'utf8')) as RawMap;
    expect(map.version).toBe(3);
    expect(map.sourcesContent).toBeUndefined();
    expect(map.sources.some((s) => /(^|\/)src\/lib\/runtime\.ts$/.test(s))).toBe(true);
  });
});

/** Where `needle` is in `text`, as the 0-based line and column a source map is looked up with. */
function position(text: string, needle: string): { line: number; column: number } {
  const at = text.indexOf(needle);
  expect(at).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, at).split('\n');
  return { line: before.length - 1, column: before.at(-1)!.length };
}

// The point of the maps: a bug's stack frame in a minified bundle leads to the TypeScript file and line.
test.each<[string, string, string]>([
  ['neon-snapshot', 'src/lib/neon-schedule.ts', 'is not a retention'],
  ['cli', 'src/lib/duration.ts', 'is not a duration'],
  ['pgdump-to-s3', 'src/lib/runtime.ts', 'Unexpected error (a bug; please report it)'],
])('a position in dist/%s maps back to %s at the line that holds %j', (name, source, needle) => {
  const dir = path.join(repoRoot, 'dist', name);
  const map = new SourceMap(JSON.parse(readFileSync(path.join(dir, 'index.js.map'), 'utf8')));
  const at = position(readFileSync(path.join(dir, 'index.js'), 'utf8'), needle);
  const entry = map.findEntry(at.line, at.column) as { originalSource?: string; originalLine?: number };
  expect(entry.originalSource).toMatch(new RegExp(`(^|/)${source.replace(/[.]/g, '\\.')}$`));
  const want = position(readFileSync(path.join(repoRoot, source), 'utf8'), needle).line;
  // The mapping is per token: the string's own line, or the line that starts its statement.
  expect(entry.originalLine).toBeGreaterThanOrEqual(want - 3);
  expect(entry.originalLine).toBeLessThanOrEqual(want);
});
