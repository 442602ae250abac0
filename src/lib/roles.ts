/**
 * Roles a restore needs, read from the SQL pg_restore would run, and role attributes read from a backup's globals
 * (`pg_dumpall --globals-only`). Pure: no I/O.
 */
import { quoteIdent } from './pg-client.js';
import { splitSql } from './sql-split.js';

interface Token {
  /** `name` for an identifier (quoted or not), `string` for a literal, `punct` for anything else. */
  kind: 'name' | 'string' | 'punct';
  /** The identifier as Postgres reads it (unquoted names folded to lower case), the literal's value, or the char. */
  value: string;
  /** True for an unquoted word: only those can be keywords. */
  bare: boolean;
}

/** Tokens of one statement; comments and dollar-quoted bodies are skipped. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) i++;
    else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let value = '';
      while (j < sql.length) {
        if (sql[j] === c && sql[j + 1] === c) {
          value += c;
          j += 2;
        } else if (sql[j] === c) break;
        else value += sql[j++];
      }
      out.push({ kind: c === '"' ? 'name' : 'string', value, bare: false });
      i = j + 1;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.test(sql.slice(i, i + 64))) {
      const tag = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i, i + 64))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? sql.length : end + tag.length;
    } else if (/[\p{L}_]/u.test(c)) {
      const m = /^[\p{L}_][\p{L}\p{N}_$]*/u.exec(sql.slice(i))!;
      out.push({ kind: 'name', value: m[0].toLowerCase(), bare: true });
      i += m[0].length;
    } else {
      out.push({ kind: 'punct', value: c, bare: false });
      i++;
    }
  }
  return out;
}

const NOT_ROLES = new Set(['public', 'current_user', 'session_user', 'current_role', 'group']);

const isWord = (t: Token | undefined, word: string) => t?.bare === true && t.value === word;

/** A comma-separated role list starting at `i`; PUBLIC and CURRENT_USER & co. are not roles. */
function roleList(tokens: Token[], i: number): string[] {
  const roles: string[] = [];
  while (i < tokens.length) {
    const t = tokens[i]!;
    if (isWord(t, 'group')) {
      i++; // GRANT ... TO GROUP name
      continue;
    }
    if (t.kind !== 'name') break;
    if (!(t.bare && NOT_ROLES.has(t.value))) roles.push(t.value);
    if (tokens[i + 1]?.value !== ',' || tokens[i + 1]?.kind !== 'punct') break;
    i += 2;
  }
  return roles;
}

function lastIndexOfWord(tokens: Token[], word: string, before = tokens.length): number {
  for (let i = before - 1; i >= 0; i--) if (isWord(tokens[i], word)) return i;
  return -1;
}

/** Roles one statement of a pg_restore script refers to. */
export function rolesInStatement(statement: string): string[] {
  const t = tokenize(statement);
  if (t.length === 0) return [];
  const roles: string[] = [];
  let body = t;
  if (isWord(t[0], 'alter') && isWord(t[1], 'default') && isWord(t[2], 'privileges')) {
    // ALTER DEFAULT PRIVILEGES [FOR ROLE a, b] [IN SCHEMA s] GRANT ... TO r | REVOKE ... FROM r
    let i = 3;
    if (isWord(t[i], 'for') && (isWord(t[i + 1], 'role') || isWord(t[i + 1], 'user')))
      roles.push(...roleList(t, i + 2));
    i = t.findIndex((x) => isWord(x, 'grant') || isWord(x, 'revoke'));
    if (i < 0) return roles;
    body = t.slice(i);
  }
  if (isWord(body[0], 'grant') || isWord(body[0], 'revoke')) {
    const grant = isWord(body[0], 'grant');
    const at = lastIndexOfWord(body, grant ? 'to' : 'from');
    if (at >= 0) roles.push(...roleList(body, at + 1));
    const by = lastIndexOfWord(body, 'by');
    if (by > 0 && isWord(body[by - 1], 'granted')) roles.push(...roleList(body, by + 1));
    return roles;
  }
  if (isWord(t[0], 'create') && isWord(t[1], 'policy')) {
    // CREATE POLICY name ON table [AS ...] [FOR ...] [TO roles] [USING (...)] [WITH CHECK (...)]
    const using = t.findIndex(
      (x, i) => i > 2 && (isWord(x, 'using') || (isWord(x, 'with') && isWord(t[i + 1], 'check'))),
    );
    const to = lastIndexOfWord(t, 'to', using < 0 ? t.length : using);
    if (to > 3) roles.push(...roleList(t, to + 1));
    return roles;
  }
  if (isWord(t[0], 'create') && isWord(t[1], 'user') && isWord(t[2], 'mapping')) {
    let i = 3;
    if (isWord(t[i], 'if')) i += 3; // IF NOT EXISTS
    if (isWord(t[i], 'for') && !isWord(t[i + 1], 'user')) roles.push(...roleList(t, i + 1));
    return roles;
  }
  if (isWord(t[0], 'set') && isWord(t[1], 'session') && isWord(t[2], 'authorization') && t[3]) {
    if (t[3].kind === 'string' || (t[3].kind === 'name' && !isWord(t[3], 'default'))) roles.push(t[3].value);
    return roles;
  }
  if (isWord(t[0], 'alter')) {
    const owner = lastIndexOfWord(t, 'owner');
    if (owner > 0 && isWord(t[owner + 1], 'to')) roles.push(...roleList(t, owner + 2).slice(0, 1));
  }
  return roles;
}

/** Every role a pg_restore script refers to, each once, in order of first use. */
export function referencedRoles(script: string): string[] {
  const seen = new Set<string>();
  for (const s of splitSql(script)) for (const r of rolesInStatement(s)) seen.add(r);
  return [...seen];
}

/** Role attributes that decide what restored objects do; the ones that grant power are never copied. */
export interface RoleAttributes {
  bypassRls: boolean;
  inherit: boolean;
}

/**
 * The attributes of `names` in a `pg_dumpall --globals-only` script (its `CREATE ROLE` / `ALTER ROLE ... WITH`
 * lines). Roles the script does not define are absent from the map. Passwords in the script are never read.
 */
export function roleAttributesFromGlobals(script: string, names: string[]): Map<string, RoleAttributes> {
  const wanted = new Set(names);
  const out = new Map<string, RoleAttributes>();
  for (const s of splitSql(script)) {
    const t = tokenize(s);
    const create = isWord(t[0], 'create') && (isWord(t[1], 'role') || isWord(t[1], 'user'));
    const alter = isWord(t[0], 'alter') && (isWord(t[1], 'role') || isWord(t[1], 'user'));
    if (!(create || alter) || t[2]?.kind !== 'name' || !wanted.has(t[2].value)) continue;
    const name = t[2].value;
    // ALTER ROLE x SET/RESET/RENAME/IN DATABASE ... are not attribute lists.
    if (alter && (isWord(t[3], 'set') || isWord(t[3], 'reset') || isWord(t[3], 'rename') || isWord(t[3], 'in')))
      continue;
    const attrs = out.get(name) ?? { bypassRls: false, inherit: true };
    for (const x of t.slice(3)) {
      if (!x.bare) continue;
      if (x.value === 'bypassrls') attrs.bypassRls = true;
      else if (x.value === 'nobypassrls') attrs.bypassRls = false;
      else if (x.value === 'inherit') attrs.inherit = true;
      else if (x.value === 'noinherit') attrs.inherit = false;
    }
    out.set(name, attrs);
  }
  return out;
}

/** `CREATE ROLE ... NOLOGIN`: never a password, never LOGIN, SUPERUSER, CREATEDB, CREATEROLE or REPLICATION. */
export function createRoleSql(name: string, attrs?: RoleAttributes): string {
  const parts = ['NOLOGIN'];
  if (attrs && !attrs.inherit) parts.push('NOINHERIT');
  if (attrs?.bypassRls) parts.push('BYPASSRLS');
  return `CREATE ROLE ${quoteIdent(name)} ${parts.join(' ')}`;
}
