import fs from 'node:fs';
import path from 'node:path';

// The layering CONTRIBUTING.md describes, checked on every import so that a change which crosses it fails here
// instead of in a review: actions → handlers → core → lib → spec and version (the leaves).
const SRC = path.resolve('src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Each import of a file, as a path relative to src (`lib/s3.ts`), or the bare module name; `typeOnly` marked. */
function importsOf(file: string): { target: string; typeOnly: boolean }[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: { target: string; typeOnly: boolean }[] = [];
  const resolve = (spec: string) =>
    spec.startsWith('.') ? path.relative(SRC, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts') : spec;
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm))
    found.push({ target: resolve(m[2]!), typeOnly: Boolean(m[1]) });
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g))
    found.push({ target: resolve(m[1]!), typeOnly: false });
  return found;
}

const files = sourceFiles(SRC).map((f) => ({ file: path.relative(SRC, f), imports: importsOf(f) }));
const layer = (p: string) => p.split('/')[0]!.replace(/\.ts$/, '');

/** The action a handler file belongs to: `handlers/verify-restore/neon.ts` and `handlers/verify-restore.ts` both
 * belong to `verify-restore`; `handlers/inputs/*` belongs to none (input readers shared by several actions). */
function ownerOf(p: string): string | undefined {
  const [, first, second] = p.split('/');
  if (first === 'inputs') return undefined;
  return second ? first : first!.replace(/\.ts$/, '');
}

test('the scan sees the source tree (a broken scan would pass every rule below)', () => {
  expect(files.length).toBeGreaterThan(60);
  const verify = files.find((f) => f.file === 'handlers/verify-restore.ts');
  expect(verify?.imports.map((i) => i.target)).toContain('core/verify.ts');
});

const ALLOWED: Record<string, string[]> = {
  spec: [],
  lib: ['lib', 'spec', 'version'],
  core: ['core', 'lib', 'spec', 'version'],
  handlers: ['handlers', 'core', 'lib', 'spec', 'version'],
  actions: ['handlers', 'lib'],
  cli: ['handlers', 'core', 'lib', 'spec', 'version'],
  version: [],
};

test.each(Object.keys(ALLOWED))('%s imports only from the layers below it', (name) => {
  const crossing = files
    .filter((f) => layer(f.file) === name)
    .flatMap((f) =>
      f.imports
        .filter((i) => i.target.endsWith('.ts'))
        .filter((i) => !ALLOWED[name]!.includes(layer(i.target)))
        .map((i) => `${f.file} → ${i.target}`),
    );
  expect(crossing).toEqual([]);
});

test("a handler imports no other action's handler, only its own files and the shared input readers", () => {
  const crossing = files
    .filter((f) => layer(f.file) === 'handlers')
    .flatMap((f) =>
      f.imports
        .filter((i) => layer(i.target) === 'handlers')
        .filter((i) => {
          const to = ownerOf(i.target);
          return to !== undefined && to !== ownerOf(f.file);
        })
        .map((i) => `${f.file} → ${i.target}`),
    );
  expect(crossing).toEqual([]);
  // The shared readers are shared: more than one action uses each of them.
  for (const reader of files.filter((f) => f.file.startsWith('handlers/inputs/'))) {
    const users = new Set(
      files
        .filter((f) => !f.file.startsWith('handlers/inputs/') && f.imports.some((i) => i.target === reader.file))
        .map((f) => (f.file.startsWith('handlers/') ? ownerOf(f.file) : f.file)),
    );
    expect([reader.file, users.size > 1]).toEqual([reader.file, true]);
  }
});

test('only lib/process.ts starts programs, and only lib/run-context.ts reads the GITHUB_* environment', () => {
  const spawning = files
    .filter((f) => f.imports.some((i) => i.target === 'node:child_process' && !i.typeOnly))
    .map((f) => f.file);
  expect(spawning).toEqual(['lib/process.ts']);
  const readingGithub = files
    .filter((f) => /\benv\.GITHUB_|env\[['"]GITHUB_/.test(fs.readFileSync(path.join(SRC, f.file), 'utf8')))
    .map((f) => f.file);
  expect(readingGithub).toEqual(['lib/run-context.ts']);
});
