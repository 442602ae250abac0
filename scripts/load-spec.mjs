// Loads src/spec.ts in plain Node (20 cannot strip types itself) by transpiling it with swc.
import { transformFileSync } from '@swc/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function loadSpec() {
  const { code } = transformFileSync(path.join(root, 'src/spec.ts'), {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spec-'));
  const file = path.join(dir, 'spec.mjs');
  writeFileSync(file, code);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
