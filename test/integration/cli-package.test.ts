import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../harness/run-action.js';

// The npm package of the CLI as the release workflow builds it (`npm run pack:cli`) and as users run it outside a
// clone: installed with `npm install -g`, or run from the release tarball with `npx --package`. All offline: the
// package has no dependencies, so nothing is fetched.

const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', npm_config_update_notifier: 'false' };
delete env.GITHUB_SERVER_URL; // the repository URL asserted below is github.com's
let tmp: string;
let tarball: string;

function run(command: string, args: string[], cwd = tmp, extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...env, npm_config_cache: path.join(tmp, 'cache'), ...extra },
  });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-package-'));
  const r = run(process.execPath, [
    path.join(repoRoot, 'scripts/pack-cli.mjs'),
    '--out',
    path.join(tmp, 'out'),
    '--repository',
    'example/postgres-backup-actions',
  ]);
  expect([r.code, r.err]).toEqual([0, expect.any(String)]);
  tarball = r.out.trim();
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the script prints the tarball it wrote, named as npm names it', () => {
  expect(tarball).toBe(path.join(tmp, 'out', `postgres-backup-${version}.tgz`));
});

test('the tarball holds the bundle and its chunks, maps, register and licenses, the bin, package.json, README and LICENSE', () => {
  const r = run('tar', ['-tzf', tarball]);
  expect(r.code).toBe(0);
  // The chunks are the modules the CLI loads on first use (the S3 SDK, age): numbered by the bundler.
  const chunks = readdirSync(path.join(repoRoot, 'dist', 'cli')).filter((f) => /^\d+\.index\.js(\.map)?$/.test(f));
  expect(chunks.length).toBeGreaterThanOrEqual(4);
  expect(r.out.split('\n').filter(Boolean).sort()).toEqual(
    [
      'LICENSE',
      'README.md',
      'bin.js',
      'index.js',
      'index.js.map',
      'licenses.txt',
      'package.json',
      'sourcemap-register.cjs',
      ...chunks,
    ]
      .sort()
      .map((f) => `package/${f}`),
  );
});

test('its package.json: the root version and engines, an ES module bin, no dependencies, the repository', () => {
  const r = run('tar', ['-xzOf', tarball, 'package/package.json']);
  const pkg = JSON.parse(r.out) as Record<string, unknown>;
  const root = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  expect(pkg).toMatchObject({
    name: 'postgres-backup',
    version,
    license: 'MIT',
    type: 'module',
    bin: { 'postgres-backup': 'bin.js' },
    engines: root.engines,
    repository: { type: 'git', url: 'git+https://github.com/example/postgres-backup-actions.git' },
  });
  for (const k of ['dependencies', 'optionalDependencies', 'peerDependencies', 'scripts'])
    expect([k, pkg[k]]).toEqual([k, undefined]);
  expect(run('tar', ['-xzOf', tarball, 'package/bin.js']).out).toMatch(/^#!\/usr\/bin\/env node\n/);
});

test('installed offline with npm install -g, postgres-backup prints its version and its commands', () => {
  const prefix = path.join(tmp, 'global');
  const i = run('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball]);
  expect([i.code, i.err]).toEqual([0, expect.any(String)]);
  const bin = path.join(prefix, 'bin', 'postgres-backup');

  const v = run(bin, ['--version'], os.tmpdir());
  expect([v.code, v.out]).toEqual([0, `${version}\n`]);

  const h = run(bin, ['--help'], os.tmpdir());
  expect(h.code).toBe(0);
  expect(h.out).toMatch(/^Usage: postgres-backup <command>/);
  for (const command of ['backup', 'verify', 'restore', 'recover', 'list', 'prune', 'neon-snapshot', 'report'])
    expect([command, new RegExp(`^ {2}${command}\\s`, 'm').test(h.out)]).toEqual([command, true]);

  // The bundle's own handling is untouched: a command's options, and an error's exit code.
  expect(run(bin, ['list', '--help'], os.tmpdir()).out).toContain('--s3-bucket <value> (required)');
  const bad = run(bin, ['frobnicate'], os.tmpdir());
  expect([bad.code, /Unknown command "frobnicate"/.test(bad.err)]).toEqual([1, true]);

  // A command that talks to S3 loads the SDK's chunk from the installed package: a store that is not there is a
  // fault it explains, not a missing module.
  const store = [
    '--s3-bucket',
    'backups',
    '--s3-endpoint',
    'http://127.0.0.1:9',
    '--s3-force-path-style',
    'true',
    '--database',
    'app',
  ];
  const creds = { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };
  const list = run(bin, ['list', ...store], os.tmpdir(), creds);
  expect([list.code === 0, list.err]).toEqual([false, expect.stringMatching(/could not be reached/)]);
  expect(list.err).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND|\n\s+at /);
});

test('run from the tarball with npx --package, as the README shows for a release asset', () => {
  const r = run('npx', ['--yes', '--offline', `--package=${tarball}`, 'postgres-backup', '--version'], os.tmpdir());
  expect([r.code, r.out]).toEqual([0, `${version}\n`]);
});
