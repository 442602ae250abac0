// Builds one ncc bundle per action plus the CLI, then writes action.yml files and the README tables from src/spec.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
      '--license',
      'licenses.txt',
      '-q',
    ],
    { cwd: root, stdio: 'inherit' },
  );
  const mapFile = path.join(out, name, 'index.js.map');
  const map = JSON.parse(readFileSync(mapFile, 'utf8'));
  delete map.sourcesContent;
  // ncc puts the entry's shebang (the CLI's) above the code after mapping it: one empty line keeps the map aligned.
  if (readFileSync(path.join(out, name, 'index.js'), 'utf8').startsWith('#!')) map.mappings = ';' + map.mappings;
  writeFileSync(mapFile, JSON.stringify(map));
}
if (!process.argv[2])
  execFileSync(process.execPath, [path.join(root, 'scripts/gen-docs.mjs')], { cwd: root, stdio: 'inherit' });
