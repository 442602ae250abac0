// Builds one ncc bundle per action plus the CLI, then writes action.yml files and the README tables from src/spec.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
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
      '--no-source-map-register',
      '--license',
      'licenses.txt',
      '-q',
    ],
    { cwd: root, stdio: 'inherit' },
  );
}
if (!process.argv[2])
  execFileSync(process.execPath, [path.join(root, 'scripts/gen-docs.mjs')], { cwd: root, stdio: 'inherit' });
