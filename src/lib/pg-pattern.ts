/**
 * pg_dump's name patterns (`-n`, `--exclude-table-data`): unquoted letters fold to lower case, `*` and `?` are
 * wildcards, `.` separates schema from name, double quotes keep case and make `*`, `?` and `.` literal.
 */
export interface NamePattern {
  schema?: RegExp;
  name: RegExp;
}

function toRegex(part: string): RegExp {
  let out = '';
  let quoted = false;
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!;
    if (ch === '"') {
      if (quoted && part[i + 1] === '"') {
        out += '"';
        i++;
      } else quoted = !quoted;
    } else if (!quoted && ch === '*') out += '.*';
    else if (!quoted && ch === '?') out += '.';
    else out += (quoted ? ch : ch.toLowerCase()).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Splits on the first unquoted dot. */
function splitQualified(pattern: string): string[] {
  let quoted = false;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '"') quoted = !quoted;
    else if (pattern[i] === '.' && !quoted) return [pattern.slice(0, i), pattern.slice(i + 1)];
  }
  return [pattern];
}

export function tablePattern(pattern: string): NamePattern {
  const parts = splitQualified(pattern);
  return parts.length === 2 ? { schema: toRegex(parts[0]!), name: toRegex(parts[1]!) } : { name: toRegex(parts[0]!) };
}

export function schemaPattern(pattern: string): RegExp {
  return toRegex(pattern);
}

export function matchesTable(p: NamePattern, schema: string, name: string): boolean {
  return (!p.schema || p.schema.test(schema)) && p.name.test(name);
}
