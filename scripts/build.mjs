// Builds one ncc bundle per action plus the CLI, then writes action.yml files and the README tables from src/spec.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from '@swc/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'dist');
export const ENTRIES = {
  'pgdump-to-s3': 'src/actions/pgdump-to-s3.ts',
  'verify-restore': 'src/actions/verify-restore.ts',
  'prune-retention': 'src/actions/prune-retention.ts',
  'neon-snapshot': 'src/actions/neon-snapshot.ts',
  'open-failure-issue': 'src/actions/open-failure-issue.ts',
  'backup-report': 'src/actions/backup-report.ts',
  cli: 'src/cli.ts',
};

/**
 * The licence of every package bundled into the entry or any of its chunks (ncc's own `--license` lists only one
 * chunk's once a bundle has several): name, licence, licence text, sorted by name.
 */
function licenses(packageDirs) {
  const entries = packageDirs.map((dir) => {
    const pkg = JSON.parse(readFileSync(path.join(root, dir, 'package.json'), 'utf8'));
    const file = readdirSync(path.join(root, dir)).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text = file
      ? readFileSync(path.join(root, dir, file), 'utf8')
          .replace(/^\s*\n/, '')
          .trimEnd()
      : '';
    const licence = typeof pkg.license === 'string' ? pkg.license : (pkg.license?.type ?? 'UNKNOWN');
    return { name: pkg.name, body: `${pkg.name}\n${licence}\n${text}\n` };
  });
  const unique = [...new Map(entries.map((e) => [e.body, e])).values()];
  return unique
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.body < b.body ? -1 : 1))
    .map((e) => e.body)
    .join('\n');
}

async function minifyChunk(file) {
  const out = await transform(readFileSync(file, 'utf8'), {
    filename: path.basename(file),
    inputSourceMap: readFileSync(`${file}.map`, 'utf8'),
    sourceMaps: true,
    minify: true,
    isModule: true,
    swcrc: false,
    configFile: false,
    jsc: {
      target: 'es2022',
      parser: { syntax: 'ecmascript' },
      minify: { compress: false, mangle: false },
    },
  });
  const map = JSON.parse(out.map);
  map.sources = map.sources.map((s) => path.posix.normalize(s));
  writeFileSync(file, `${out.code}\n//# sourceMappingURL=${path.basename(file)}.map\n`);
  writeFileSync(`${file}.map`, JSON.stringify(map));
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const [name, entry] of Object.entries(ENTRIES)) {
  execFileSync(
    process.execPath,
    [
      path.join(root, 'node_modules/@vercel/ncc/dist/ncc/cli.js'),
      'build',
      entry,
      '-o',
      path.join(out, name),
      '--minify',
      // A source map, and ncc's register (source-map-support) loaded first by the bundle, so that the stack of a bug
      // of ours names src/ files and lines. The sources themselves are left out of the map: they are in the repository
      // at the same tag, and keeping them would double the committed dist/.
      '--source-map',
      '-q',
    ],
    { cwd: root, stdio: 'inherit' },
  );
  // ncc minifies only the entry. Its chunks lose whitespace and comments, so that a run loading them compiles
  // fewer bytes; their maps are chained to the sources. No renaming: swc's mangler turned a class static block of
  // @noble/curves into a TDZ error.
  for (const chunk of readdirSync(path.join(out, name)).filter((f) => /^\d+\.index\.js$/.test(f)))
    await minifyChunk(path.join(out, name, chunk));
  // The entry's map and those of its chunks (modules loaded on first use, e.g. the S3 SDK: src/lib/s3-sdk.ts).
  const packages = new Set();
  for (const mapName of readdirSync(path.join(out, name)).filter((f) => f.endsWith('.js.map'))) {
    const mapFile = path.join(out, name, mapName);
    const map = JSON.parse(readFileSync(mapFile, 'utf8'));
    for (const source of map.sources) {
      const m = /^(?:.*\/)?(node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(source);
      if (m) packages.add(source.slice(0, source.lastIndexOf(m[1]) + m[1].length).replace(/^(\.\.\/)+/, ''));
    }
    delete map.sourcesContent;
    // ncc puts the entry's shebang (the CLI's) above the code after mapping it: one empty line keeps the map aligned.
    if (readFileSync(mapFile.slice(0, -'.map'.length), 'utf8').startsWith('#!')) map.mappings = ';' + map.mappings;
    writeFileSync(mapFile, JSON.stringify(map));
  }
  writeFileSync(path.join(out, name, 'licenses.txt'), licenses([...packages]));
}
if (!process.argv[2])
  execFileSync(process.execPath, [path.join(root, 'scripts/gen-docs.mjs')], { cwd: root, stdio: 'inherit' });
