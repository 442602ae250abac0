import { chmodSync, copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findServerBin, startPostgres, type TestPostgres } from './postgres.js';
import { tempDir } from './index.js';

/**
 * A private copy of the installed server whose extension directory also holds a test extension, so that one
 * cluster has an extension the others lack, without touching system directories. PostgreSQL finds its share and
 * lib directories relative to its own executable (symlinks resolved), so the three programs are copied and
 * everything else is linked: `<tmp>/usr/lib/postgresql/<v>/bin`, `<tmp>/usr/share/postgresql/<v>/extension`.
 */
export function serverTreeWithExtension(ext: { name: string; sql: string }): string {
  const bin = findServerBin(); // e.g. /usr/lib/postgresql/15/bin
  const libRoot = path.dirname(bin); // /usr/lib/postgresql/15
  const version = path.basename(libRoot);
  const shareRoot = path.resolve(libRoot, '../../../share/postgresql', version);
  const root = tempDir('pgtree-');
  chmodSync(root, 0o755);
  const myLib = path.join(root, 'usr/lib/postgresql', version);
  const myShare = path.join(root, 'usr/share/postgresql', version);
  mkdirSync(path.join(myLib, 'bin'), { recursive: true });
  for (const p of ['initdb', 'pg_ctl', 'postgres']) copyFileSync(path.join(bin, p), path.join(myLib, 'bin', p));
  for (const p of ['initdb', 'pg_ctl', 'postgres']) chmodSync(path.join(myLib, 'bin', p), 0o755);
  symlinkSync(path.join(libRoot, 'lib'), path.join(myLib, 'lib'));
  mkdirSync(path.join(myShare, 'extension'), { recursive: true });
  for (const entry of readdirSync(shareRoot)) {
    if (entry !== 'extension') symlinkSync(path.join(shareRoot, entry), path.join(myShare, entry));
  }
  for (const f of readdirSync(path.join(shareRoot, 'extension')))
    symlinkSync(path.join(shareRoot, 'extension', f), path.join(myShare, 'extension', f));
  writeFileSync(
    path.join(myShare, 'extension', `${ext.name}.control`),
    `comment = 'test extension of postgres-backup-actions'\ndefault_version = '1.0'\nrelocatable = true\n`,
  );
  writeFileSync(path.join(myShare, 'extension', `${ext.name}--1.0.sql`), ext.sql);
  for (const d of [root, path.join(root, 'usr'), path.join(root, 'usr/lib'), path.join(root, 'usr/share')])
    chmodSync(d, 0o755);
  return path.join(myLib, 'bin');
}

/** A throwaway cluster run from `bin` (a tree from `serverTreeWithExtension`). */
export async function startPostgresFrom(bin: string): Promise<TestPostgres> {
  const saved = process.env.PG_BIN;
  process.env.PG_BIN = bin;
  try {
    return await startPostgres();
  } finally {
    if (saved === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = saved;
  }
}
