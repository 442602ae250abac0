import { readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { inputError } from './errors.js';
import { splitSql } from './sql-split.js';

/** SQL commands a check may start with: queries, and the statements that set one up. */
const SQL_COMMANDS =
  /^(select|with|values|table|show|set|reset|do|create|drop|analyze|explain|prepare|execute|begin|commit|rollback)\b/i;
const MAX_BYTES = 1 << 20;

/**
 * Reads and validates `checks-sql` before anything is downloaded or restored: a `.sql` file inside the workspace
 * (symlinks resolved; `..` and absolute paths elsewhere refused), UTF-8 text, every statement an SQL command.
 * Nothing of the file's content is ever quoted in an error: a wrong file may hold secrets (a `.env`).
 */
export function readChecksFile(
  input: string,
  file: string,
  /** The checked-out repository (`GITHUB_WORKSPACE`), or the working directory outside Actions. */
  workspace: string,
): { path: string; text: string } {
  const root = realpathSync(workspace);
  const wanted = path.resolve(root, file);
  const fix =
    'Give the path of a `.sql` file in the repository, relative to the workspace, e.g. `.github/backup-checks.sql`.';
  if (path.extname(wanted).toLowerCase() !== '.sql') throw inputError(input, 'is not a `.sql` file', fix);
  let real: string;
  try {
    real = realpathSync(wanted);
  } catch (e) {
    throw inputError(
      input,
      `cannot read "${file}" (${(e as NodeJS.ErrnoException).code})`,
      `${fix} Check out the repository before this step.`,
    );
  }
  const rel = path.relative(root, real);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw inputError(input, `"${file}" is outside the workspace`, fix);
  const stat = statSync(real);
  if (!stat.isFile()) throw inputError(input, `"${file}" is not a file`, fix);
  if (stat.size > MAX_BYTES) throw inputError(input, `"${file}" is larger than 1 MiB`, fix);
  const bytes = readFileSync(real);
  const text = bytes.toString('utf8');
  if (bytes.includes(0) || Buffer.from(text, 'utf8').compare(bytes) !== 0)
    throw inputError(input, `"${file}" is not UTF-8 text`, fix);
  const statements = splitSql(text);
  if (statements.length === 0) throw inputError(input, `"${file}" holds no SQL statement`, fix);
  statements.forEach((s, i) => {
    const code = s
      .replace(/\/\*[\s\S]*?\*\//g, ' ')
      .replace(/--.*$/gm, ' ')
      .trim();
    if (!SQL_COMMANDS.test(code))
      throw inputError(
        input,
        `statement ${i + 1} of "${file}" does not start with an SQL command such as SELECT or WITH (its text is not shown, in case this is the wrong file)`,
        fix,
      );
  });
  return { path: path.relative(root, real), text };
}
