import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../harness/run-action.js';

/** Runs the CLI bundle as users do; these cases never reach a database or a bucket. */
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist/cli/index.js'), ...args], {
    encoding: 'utf8',
    input: '',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a flag before the command does not swallow it', () => {
  const r = cli('--dry-run', 'prune', '--help');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^Usage: postgres-backup prune /);
});

test('list --help shows only what list takes', () => {
  const r = cli('list', '--help');
  expect(r.code).toBe(0);
  expect(r.out).toContain('--s3-bucket <value> (required)');
  expect(r.out).toContain('--database <value>');
  expect(r.out).not.toContain('--target-url');
  expect(r.out).not.toContain('--confirm');
});

test('restore --help does not offer the mode its command implies; flags show no value', () => {
  const r = cli('restore', '--help');
  expect(r.out).not.toMatch(/^ {2}--mode\b/m);
  expect(r.out).toMatch(/--s3-force-path-style \[default: false\]/);
});

test.each([
  [
    ['list', '--target-url', 'postgres://u:pw@h/db', '--s3-bucket', 'b', '--database', 'd'],
    /Unknown option --target-url for list/,
  ],
  [['backup', '--no-such-option', 'x'], /Unknown option '--no-such-option'.*postgres-backup backup --help/],
  [['backup', '--database-url'], /argument missing.*postgres-backup backup --help/],
  [['backup', 'extra'], /Unexpected argument "extra"/],
  [['frobnicate'], /Unknown command "frobnicate"/],
])('%j is refused with a message and no stack trace', (args, message) => {
  const r = cli(...args);
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.err + r.out).not.toContain('pw@');
});

test('a flag takes an explicit true/false, with = or as the next word', () => {
  for (const args of [['--dry-run=false'], ['--dry-run', 'false'], ['--dry-run']]) {
    const r = cli('plan-retention', ...args, '--keep-last', 'x');
    // The policy is checked after the arguments parse: the error names keep-last, not the flag.
    expect(r.err).toMatch(/keep-last/);
  }
});
