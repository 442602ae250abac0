// Writes actions/<name>/action.yml and the README's input/output tables from src/spec.ts.
// With --check, writes nothing and exits 1 when a file is out of date.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadSpec, root } from './load-spec.mjs';

const check = process.argv.includes('--check');
const { ACTIONS } = await loadSpec();
const stale = [];

function write(file, text) {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (old === text) return;
  if (check) stale.push(path.relative(root, file));
  else {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

export function actionYaml(a) {
  const doc = {
    name: `postgres-backup-actions: ${a.name}`,
    description: a.description,
    author: 'postgres-backup-actions',
    branding: { icon: 'database', color: 'blue' },
    inputs: Object.fromEntries(
      Object.entries(a.inputs).map(([k, i]) => [
        k,
        {
          description: i.description,
          required: Boolean(i.required),
          ...(i.default !== undefined ? { default: i.default } : {}),
        },
      ]),
    ),
    outputs: Object.fromEntries(Object.entries(a.outputs).map(([k, d]) => [k, { description: d }])),
    runs: { using: 'node24', main: `../../dist/${a.name}/index.js` },
  };
  return `# Generated from src/spec.ts by \`npm run build\`: edit the spec, not this file.\n${stringify(doc, { lineWidth: 0 })}`;
}

const cell = (s) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
export function tables(a) {
  const rows = ['| Input | Required | Default | Description |', '|---|---|---|---|'];
  for (const [k, i] of Object.entries(a.inputs)) {
    rows.push(
      `| \`${k}\` | ${i.required ? 'yes' : 'no'} | ${i.default !== undefined && i.default !== '' ? '`' + cell(i.default) + '`' : ''} | ${cell(i.description)} |`,
    );
  }
  rows.push('', '| Output | Description |', '|---|---|');
  for (const [k, d] of Object.entries(a.outputs)) rows.push(`| \`${k}\` | ${cell(d)} |`);
  return rows.join('\n');
}

for (const a of ACTIONS) write(path.join(root, 'actions', a.name, 'action.yml'), actionYaml(a));

const readmePath = path.join(root, 'README.md');
if (existsSync(readmePath)) {
  let readme = readFileSync(readmePath, 'utf8');
  for (const a of ACTIONS) {
    const start = `<!-- tables:${a.name} -->`;
    const end = `<!-- /tables:${a.name} -->`;
    const i = readme.indexOf(start);
    const j = readme.indexOf(end);
    if (i < 0 || j < 0) {
      if (check) stale.push(`README.md (no ${start} section)`);
      continue;
    }
    readme = readme.slice(0, i + start.length) + '\n' + tables(a) + '\n' + readme.slice(j);
  }
  write(readmePath, readme);
}

if (stale.length) {
  console.error(`Out of date with src/spec.ts: ${stale.join(', ')}. Run \`npm run build\` and commit.`);
  process.exit(1);
}
