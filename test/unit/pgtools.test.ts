import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installedPgTools, onePerMajor } from '../../src/lib/pgtools.js';

const tool = (p: string, version: string) => ({ path: p, major: Number(version.split('.')[0]), version });

test.each([
  ['empty', [], []],
  ['first of a major wins', [tool('/a', '15.1'), tool('/b', '15.9'), tool('/c', '17.0')], ['/a', '/c']],
  ['order kept', [tool('/x', '17.2'), tool('/y', '13.4'), tool('/z', '13.0')], ['/x', '/y']],
])('onePerMajor: %s', (_name, found, paths) => expect(onePerMajor(found).map((t) => t.path)).toEqual(paths));

describe('installedPgTools', () => {
  let dir: string;
  let savedPath: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pgtools-'));
    savedPath = process.env.PATH;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fake tool that logs each time it is asked, then answers like pg_dump of `version`. */
  function fake(file: string, version: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    const log = path.join(dir, 'asked.log');
    writeFileSync(file, `#!/bin/sh\necho "${file}" >> "${log}"\necho "pg_dump (PostgreSQL) ${version}"\n`);
    chmodSync(file, 0o755);
  }

  test('asks each file once, all of them, and never a dispatcher when binaries of the name exist', async () => {
    const wrapperDir = path.join(dir, 'wrapper-bin');
    fake(path.join(dir, 'share', 'pg_wrapper'), '15.0');
    mkdirSync(wrapperDir);
    symlinkSync(path.join(dir, 'share', 'pg_wrapper'), path.join(wrapperDir, 'pg_dump'));
    fake(path.join(dir, 'a', 'pg_dump'), '15.5');
    mkdirSync(path.join(dir, 'a-link'));
    symlinkSync(path.join(dir, 'a', 'pg_dump'), path.join(dir, 'a-link', 'pg_dump')); // one file, two names
    fake(path.join(dir, 'c', 'pg_dump'), '17.2');
    process.env.PATH = ['wrapper-bin', 'a', 'a-link', 'c'].map((d) => path.join(dir, d)).join(path.delimiter);

    const found = (await installedPgTools('pg_dump')).filter((t) => t.path.startsWith(dir));
    expect(found).toEqual([
      { path: path.join(dir, 'a', 'pg_dump'), major: 15, version: '15.5' },
      { path: path.join(dir, 'c', 'pg_dump'), major: 17, version: '17.2' },
    ]);
    const asked = readFileSync(path.join(dir, 'asked.log'), 'utf8').trim().split('\n').sort();
    expect(asked).toEqual([path.join(dir, 'a', 'pg_dump'), path.join(dir, 'c', 'pg_dump')]);
  });
});
