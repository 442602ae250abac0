import { mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The files port: the local disk the core uses (a verification's work directory, the documents it writes for the
 * user: plan, report, diff). The host's is `localFiles`; a test can hand the core its own (a full disk, a
 * read-only directory) without touching the machine's.
 */
export interface Files {
  /** A new, empty, private directory under `parent`. */
  makeWorkDir(parent: string, prefix: string): string;
  /** Removes a file or a directory tree; nothing if it is gone already. */
  remove(target: string): void;
  readText(file: string): string;
  writeText(file: string, text: string): void;
  /** Free bytes for an unprivileged writer on the file system holding `dir`; undefined when unknown. */
  freeBytes(dir: string): number | undefined;
}

export const localFiles: Files = {
  makeWorkDir: (parent, prefix) => mkdtempSync(path.join(parent, prefix)),
  remove: (target) => rmSync(target, { recursive: true, force: true }),
  readText: (file) => readFileSync(file, 'utf8'),
  writeText: (file, text) => writeFileSync(file, text),
  freeBytes: freeBytesAt,
};

export function freeBytesAt(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
