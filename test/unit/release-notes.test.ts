import { readFileSync } from 'node:fs';
import path from 'node:path';
import { releaseNotes } from '../../scripts/release-notes.mjs';
import { repoRoot } from '../harness/run-action.js';
import { TOOL } from '../../src/version.js';

const changelog = [
  '# Changelog',
  '',
  '## [Unreleased]',
  '- next',
  '',
  '## [1.2.0] - 2026-12-01',
  '### Added',
  '- a thing',
  '',
  '## [1.1.0] - 2026-11-30',
  '- older',
].join('\n');

test.each([
  ['v1.2.0', '### Added\n- a thing'],
  ['1.1.0', '- older'],
  ['v1.3.0', undefined],
  ['v1.2', undefined],
])('release notes of %s', (tag, expected) => {
  expect(releaseNotes(changelog, tag)).toBe(expected);
});

test("the changelog has an entry for package.json's version", () => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  expect(releaseNotes(readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8'), `v${version}`)).toBeTruthy();
});

test("manifests record package.json's version", () => {
  const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  expect(TOOL).toEqual({ name: 'postgres-backup-actions', version });
});
