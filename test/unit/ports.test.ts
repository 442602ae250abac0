import { archiveNeeds } from '../../src/core/roles.js';
import os from 'node:os';
import { localFiles } from '../../src/lib/files.js';
import type { Processes } from '../../src/lib/process.js';

// The core starts programs through the processes port: a test hands it a pg_restore of its own.
test('archiveNeeds reads the TOC and the schema through the processes port it is given', async () => {
  const calls: string[][] = [];
  const processes: Processes = {
    spawn: () => {
      throw new Error('not used');
    },
    run: async (_cmd, args) => {
      calls.push(args);
      const stdout =
        args[0] === '-l' ? '215; 3079 16385 EXTENSION - pgcrypto\n' : 'GRANT SELECT ON TABLE public.t TO auditor;\n';
      return { code: 0, signal: null, stdout, stderr: '' };
    },
  };
  const tool = { path: '/x/pg_restore', version: '17.2', major: 17 };
  const needs = await archiveNeeds(tool, 'dump.pgdump', ['--no-owner'], processes);
  expect(needs).toEqual({ extensions: ['pgcrypto'], roles: ['auditor'] });
  expect(calls).toEqual([
    ['-l', 'dump.pgdump'],
    ['--schema-only', '--no-owner', '-f', '-', 'dump.pgdump'],
  ]);
});

test('a pg_restore that cannot read the archive is a clear error, not a crash', async () => {
  const processes: Processes = {
    spawn: () => {
      throw new Error('not used');
    },
    run: async () => ({ code: 1, signal: null, stdout: '', stderr: 'pg_restore: error: input file is too short\n' }),
  };
  await expect(archiveNeeds({ path: 'pg_restore', version: '17.2', major: 17 }, 'f', [], processes)).rejects.toThrow(
    /cannot read the archive's table of contents: pg_restore: error: input file is too short/,
  );
});

test('the local files port makes, writes, reads and removes a work directory', () => {
  const dir = localFiles.makeWorkDir(os.tmpdir(), 'pba-ports-');
  localFiles.writeText(`${dir}/a.txt`, 'hello');
  expect(localFiles.readText(`${dir}/a.txt`)).toBe('hello');
  expect(localFiles.freeBytes(dir)).toBeGreaterThan(0);
  localFiles.remove(dir);
  expect(() => localFiles.readText(`${dir}/a.txt`)).toThrow();
});
