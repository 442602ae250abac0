// Packs the committed CLI bundle (dist/cli) as the npm package `postgres-backup`, so that the CLI runs outside a clone:
// `npx --package=<release tarball> postgres-backup ...` or `npm install -g postgres-backup`. Writes a staging
// directory (`<out>/postgres-backup/`) with a generated package.json, README.md and a bin wrapper next to the bundle's
// files, runs `npm pack` on it and prints the tarball's path (the only line on stdout).
//
//   node scripts/pack-cli.mjs [--out <dir>] [--repository <owner/name>]
//
// --out defaults to <os temp dir>/postgres-backup-cli-package, outside the tree (in it, `eslint .` would lint the
// staged bundle). --repository defaults to $GITHUB_REPOSITORY (set in Actions, and what `npm publish --provenance`
// checks package.json's repository against), else the `origin` remote when it is on GitHub.
// The bundle is not rebuilt: it is the committed dist/cli, which `npm run check:dist` proves is what src/ builds.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundleDir = path.join(root, 'dist/cli');
const NAME = 'postgres-backup';
/** The bin: a two-line ES module that runs the bundle (npm links bins by file; the bundle keeps its own name). */
const BIN = 'bin.js';
/** Modules the bundle's dependencies load only when present (ncc leaves them as `eval("require")`). */
const OPTIONAL = new Set(['pg-native']);

function fail(message) {
  console.error(`pack-cli: ${message}`);
  process.exit(1);
}

const { values: opts } = parseArgs({
  options: { out: { type: 'string' }, repository: { type: 'string' } },
  strict: true,
});
const out = path.resolve(opts.out ?? path.join(os.tmpdir(), 'postgres-backup-cli-package'));

function githubRepository() {
  if (opts.repository) return opts.repository;
  if (process.env.GITHUB_REPOSITORY) return process.env.GITHUB_REPOSITORY;
  try {
    const url = execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    return /github\.com[:/]([\w.-]+\/[\w.-]+?)(?:\.git)?\s*$/.exec(url)?.[1];
  } catch {
    return undefined;
  }
}

const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const bundle = path.join(bundleDir, 'index.js');
if (!existsSync(bundle)) fail(`${path.relative(root, bundle)} is missing; run \`npm run build\` first.`);
// The bundle must be self-contained: everything it loads is a Node built-in, one of its own files, or optional.
// Its chunks (modules it loads on first use) are read too.
const bundleFiles = readdirSync(bundleDir).filter((f) => f !== 'package.json');
const code = bundleFiles
  .filter((f) => /\.c?js$/.test(f))
  .map((f) => readFileSync(path.join(bundleDir, f), 'utf8'))
  .join('\n');
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const loaded = [
  ...code.matchAll(/\bcreateRequire\(import\.meta\.url\)\("([^"]+)"\)/g),
  ...code.matchAll(/__WEBPACK_EXTERNAL_createRequire\(import\.meta\.url\)\("([^"]+)"\)/g),
  ...code.matchAll(/(?:^|[;\n])\s*import\s*(?:[^'";]*?from\s*)?["']([^"']+)["']/g),
  ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ...code.matchAll(/eval\("require"\)\("([^"]+)"\)/g),
].map((m) => m[1]);
const foreign = [...new Set(loaded)].filter(
  (m) => !builtins.has(m) && !OPTIONAL.has(m) && !(m.startsWith('./') && bundleFiles.includes(m.slice(2))),
);
if (foreign.length) fail(`dist/cli/index.js loads modules that are not in the package: ${foreign.join(', ')}`);

// Its dist/cli/package.json says what module type it is; the generated one must say the same.
const type = JSON.parse(readFileSync(path.join(bundleDir, 'package.json'), 'utf8')).type ?? 'commonjs';
if (type !== 'module') fail(`dist/cli is ${type}; the bin wrapper is written as an ES module.`);

const repository = githubRepository();
const repoUrl = repository && `${process.env.GITHUB_SERVER_URL ?? 'https://github.com'}/${repository}`;
const tag = `v${rootPkg.version}`;

const staging = path.join(out, NAME);
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
for (const f of bundleFiles) copyFileSync(path.join(bundleDir, f), path.join(staging, f));
copyFileSync(path.join(root, 'LICENSE'), path.join(staging, 'LICENSE'));

writeFileSync(
  path.join(staging, BIN),
  `#!/usr/bin/env node
// postgres-backup as installed from npm: the CLI bundle beside this file.
await import('./index.js');
`,
);
chmodSync(path.join(staging, BIN), 0o755);

const help = execFileSync(process.execPath, [bundle, '--help'], {
  encoding: 'utf8',
  env: { ...process.env, NODE_OPTIONS: '' },
}).trimEnd();
const docs = repoUrl ? `${repoUrl}/blob/${tag}/README.md` : undefined;
writeFileSync(
  path.join(staging, 'README.md'),
  [
    `# ${NAME}`,
    '',
    `The command-line interface of ${repoUrl ? `[postgres-backup-actions](${repoUrl})` : 'postgres-backup-actions'}:`,
    'the same backups, verifications, restores and retention as its GitHub Actions, for laptops and for the day',
    'GitHub is down.',
    '',
    '```sh',
    `npm install -g ${NAME}`,
    `${NAME} list --s3-bucket acme-db-backups --database app`,
    '```',
    '',
    `It needs Node ${rootPkg.engines?.node ?? ''} and, on the \`PATH\`, PostgreSQL's client tools`,
    "(`pg_dump`/`pg_restore`, of a major at least the server's), `zstd` and `age`, as the actions do. It is one",
    'self-contained bundle: no dependencies are installed.',
    '',
    '```',
    help,
    '```',
    '',
    `Options are the action inputs of the same name; \`${NAME} <command> --help\` lists them.`,
    docs ? `Everything else is in the project's [README](${docs}).` : "Everything else is in the project's README.",
    '',
  ].join('\n'),
);

const files = [...bundleFiles, BIN, 'LICENSE', 'README.md'].sort();
const pkg = {
  name: NAME,
  version: rootPkg.version,
  description: `The CLI of postgres-backup-actions: ${rootPkg.description.replace(/^GitHub Actions for /, '')}`,
  license: 'MIT',
  type,
  bin: { [NAME]: BIN },
  files,
  engines: rootPkg.engines,
  ...(repoUrl && {
    repository: { type: 'git', url: `git+${repoUrl}.git` },
    homepage: `${repoUrl}#readme`,
    bugs: { url: `${repoUrl}/issues` },
  }),
  keywords: ['postgresql', 'backup', 'pg_dump', 's3', 'neon', 'restore'],
};
writeFileSync(path.join(staging, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');

const packed = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], {
    cwd: staging,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }),
);
const tarball = path.join(out, packed[0].filename);
const inTarball = packed[0].files.map((f) => f.path).sort();
const expected = [...files, 'package.json'].sort();
if (JSON.stringify(inTarball) !== JSON.stringify(expected))
  fail(`the tarball holds ${inTarball.join(', ')}; expected ${expected.join(', ')}`);
if (!repoUrl) console.error('pack-cli: no GitHub repository known (--repository); package.json has no repository.');
console.error(`pack-cli: ${NAME}@${rootPkg.version}, ${inTarball.length} files, staged in ${staging}`);
console.log(tarball);
