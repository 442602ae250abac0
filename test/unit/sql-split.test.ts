import { splitSql, statementLabel } from '../../src/lib/sql-split.js';

// checks-sql is split on top-level semicolons only: quotes, escape strings, dollar quotes and comments hide theirs.
describe('splitSql', () => {
  test.each<[string, string, string[]]>([
    ['plain statements', 'SELECT 1; SELECT 2;', ['SELECT 1', 'SELECT 2']],
    ['no trailing semicolon', 'SELECT 1;\nSELECT 2', ['SELECT 1', 'SELECT 2']],
    ['a semicolon in a string, doubled quote', "SELECT 'a;''b'; SELECT 2", ["SELECT 'a;''b'", 'SELECT 2']],
    ["an escape string with \\' and ;", "SELECT E'a\\';b'; SELECT 2", ["SELECT E'a\\';b'", 'SELECT 2']],
    ["lower-case e'' and an escaped backslash", "SELECT e'x\\\\'; SELECT 2", ["SELECT e'x\\\\'", 'SELECT 2']],
    ['a backslash in a standard string is not an escape', "SELECT 'C:\\'; SELECT 2", ["SELECT 'C:\\'", 'SELECT 2']],
    [
      "an identifier ending in e before a string is not E''",
      "SELECT name'x;y'; SELECT 2",
      ["SELECT name'x;y'", 'SELECT 2'],
    ],
    ['a quoted identifier', 'SELECT 1 AS "a;b"; SELECT 2', ['SELECT 1 AS "a;b"', 'SELECT 2']],
    ['dollar quotes, tagged', 'DO $x$ BEGIN; END $x$; SELECT 2', ['DO $x$ BEGIN; END $x$', 'SELECT 2']],
    [
      'comments',
      '-- a; b\nSELECT 1; /* c; /* nested; */ d */ SELECT 2',
      ['-- a; b\nSELECT 1', '/* c; /* nested; */ d */ SELECT 2'],
    ],
    ['comment-only pieces dropped', 'SELECT 1;\n-- done;\n', ['SELECT 1']],
  ])('%s', (_label, sql, statements) => {
    expect(splitSql(sql)).toEqual(statements);
  });
});

describe('statementLabel', () => {
  test.each<[string, string]>([
    ['SELECT 1', 'SELECT 1'],
    ['-- why\nSELECT count(*) = 3\nFROM t', 'SELECT count(*) = 3'],
    ['SELECT ' + 'x'.repeat(100), 'SELECT ' + 'x'.repeat(52) + '…'],
  ])('%j -> %j', (statement, label) => {
    expect(statementLabel(statement)).toBe(label);
  });
});
