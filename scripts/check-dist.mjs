// Rebuilds every bundle into a temp dir and fails when the committed dist/ differs or has extra or missing files:
// a stale bundle is the first bug users of an action hit. Also checks action.yml and the README tables.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from './load-spec.mjs';

function files(dir, base = dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p, base) : [path.relative(base, p)];
  });
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'dist-check-'));
try {
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), tmp], { cwd: root, stdio: 'inherit' });
  const want = new Set(files(tmp));
  const have = new Set(files(path.join(root, 'dist')));
  const problems = [];
  for (const f of want) if (!have.has(f)) problems.push(`missing: dist/${f}`);
  for (const f of have) if (!want.has(f)) problems.push(`extra: dist/${f}`);
  for (const f of want) {
    if (have.has(f) && !readFileSync(path.join(tmp, f)).equals(readFileSync(path.join(root, 'dist', f)))) {
      problems.push(`differs: dist/${f}`);
    }
  }
  if (problems.length) {
    console.error(
      `dist/ is stale (${problems.length} problem(s)):\n  ${problems.join('\n  ')}\nRun \`npm run build\` and commit dist/.`,
    );
    process.exit(1);
  }
  console.log(`dist/ is up to date (${want.size} files).`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
execFileSync(process.execPath, [path.join(root, 'scripts/gen-docs.mjs'), '--check'], { cwd: root, stdio: 'inherit' });
