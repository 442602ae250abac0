/** pg_restore's table of contents (`pg_restore -l`), for restoring chosen tables only. */
export interface TocEntry {
  line: string;
  type: string;
  schema: string;
  /** The tag: a table's name, or `<table> <constraint>` for constraints, defaults and triggers. */
  tag: string;
}

// Longest first, so that "TABLE DATA" is not read as "TABLE".
const TYPES = [
  'MATERIALIZED VIEW DATA',
  'SEQUENCE OWNED BY',
  'MATERIALIZED VIEW',
  'FK CONSTRAINT',
  'SEQUENCE SET',
  'ROW SECURITY',
  'TABLE DATA',
  'DEFAULT ACL',
  'LARGE OBJECT',
  'CONSTRAINT',
  'SEQUENCE',
  'DEFAULT',
  'TRIGGER',
  'POLICY',
  'INDEX',
  'TABLE',
];

export function parseToc(text: string): TocEntry[] {
  const entries: TocEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+; \d+ \d+ (.*)$/.exec(line);
    if (!m) continue;
    const rest = m[1]!;
    const type = TYPES.find((t) => rest.startsWith(t + ' '));
    if (!type) {
      entries.push({ line, type: rest.split(' ')[0]!, schema: '', tag: '' });
      continue;
    }
    const words = rest.slice(type.length + 1).split(' ');
    // <schema> <tag words...> <owner>
    entries.push({ line, type, schema: words[0]!, tag: words.slice(1, -1).join(' ') });
  }
  return entries;
}

export interface QualifiedName {
  schema: string;
  name: string;
}

/** `public.visits`, `"Mixed Case"."Odd Name"`, `visits` (schema public). */
export function parseQualifiedName(text: string): QualifiedName | undefined {
  const part = String.raw`(?:"((?:[^"]|"")+)"|([^."\s]+))`;
  const m = new RegExp(`^${part}(?:\\.${part})?$`).exec(text.trim());
  if (!m) return undefined;
  const first = m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!.toLowerCase();
  if (m[3] === undefined && m[4] === undefined) return { schema: 'public', name: first };
  const second = m[3] !== undefined ? m[3].replace(/""/g, '"') : m[4]!.toLowerCase();
  return { schema: first, name: second };
}

/**
 * The TOC lines that restore the chosen tables: the table, its data, defaults, constraints (foreign keys
 * included), triggers, policies, its serial sequences, and its indexes (`indexTables` maps index to table, read
 * from the archive's post-data SQL because the TOC names an index without its table).
 */
export function selectTables(
  entries: TocEntry[],
  tables: QualifiedName[],
  indexTables: Map<string, QualifiedName>,
): string[] {
  const picked: string[] = [];
  for (const e of entries) {
    const t = tables.find((t) => t.schema === e.schema && belongs(e, t, indexTables));
    if (t) picked.push(e.line);
  }
  return picked;
}

function belongs(e: TocEntry, t: QualifiedName, indexTables: Map<string, QualifiedName>): boolean {
  switch (e.type) {
    case 'TABLE':
    case 'TABLE DATA':
      return e.tag === t.name;
    case 'DEFAULT':
    case 'CONSTRAINT':
    case 'FK CONSTRAINT':
    case 'TRIGGER':
    case 'POLICY':
    case 'ROW SECURITY':
      return e.tag === t.name || e.tag.startsWith(t.name + ' ');
    case 'SEQUENCE':
    case 'SEQUENCE OWNED BY':
    case 'SEQUENCE SET':
      // serial/identity sequences are named <table>_<column>_seq
      return e.tag.startsWith(t.name + '_') && e.tag.endsWith('_seq');
    case 'INDEX': {
      const owner = indexTables.get(`${e.schema}.${e.tag}`);
      return owner !== undefined && owner.schema === t.schema && owner.name === t.name;
    }
    default:
      return false;
  }
}

/** Maps `schema.index` to its table from `CREATE INDEX name ON [ONLY] schema.table` statements. */
export function indexOwners(postDataSql: string): Map<string, QualifiedName> {
  const map = new Map<string, QualifiedName>();
  const ident = String.raw`(?:"(?:[^"]|"")+"|[^\s."]+)`;
  const re = new RegExp(`CREATE (?:UNIQUE )?INDEX (${ident}) ON (?:ONLY )?(${ident})\\.(${ident})`, 'g');
  const unq = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
  for (const m of postDataSql.matchAll(re))
    map.set(`${unq(m[2]!)}.${unq(m[1]!)}`, { schema: unq(m[2]!), name: unq(m[3]!) });
  return map;
}
