import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { readChecksFile } from '../../src/lib/checks-file.js';
import { readState, stateMarker } from '../../src/core/failure-issue.js';
import { keyProblem } from '../../src/lib/keys.js';
import { classifyS3, s3Reply } from '../../src/lib/s3.js';

describe('keyProblem: one validator for every input that becomes part of a key', () => {
  test.each([
    ['app', false, undefined],
    ['app-prod_2', false, undefined],
    ['backups/prod', true, undefined],
    ['..', false, /`\.\.` segment/],
    ['.', false, /`\.` segment/],
    ['../escape', true, /`\.\.` segment/],
    ['backups/../../escape', true, /`\.\.` segment/],
    ['a//b', true, /empty segment/],
    ['a/b', false, /contains `\/`/],
    ['app prod', false, /contains a space/],
    ['a\u0000b', true, /control character/],
    ['a\nb', false, /control character/],
    ['a/ b', true, /starts or ends with a space/],
  ])('%j (path %s)', (value, isPath, problem) => {
    const got = keyProblem(value, { path: isPath, spaces: isPath });
    if (problem) expect(got).toMatch(problem);
    else expect(got).toBeUndefined();
  });
});

describe('S3 errors are classified from status and code, never from text', () => {
  const err = (name: string, status?: number, extra: object = {}) =>
    Object.assign(new Error('whatever the text says: AccessDenied credentials'), {
      name,
      $metadata: { httpStatusCode: status, attempts: 6 },
      ...extra,
    });
  test.each([
    [err('SlowDown', 503), 'fault'],
    [err('InternalError', 500), 'fault'],
    [err('Unknown', 502), 'fault'],
    [err('Error', undefined, { code: 'ECONNRESET' }), 'fault'],
    [err('TimeoutError', undefined), 'fault'],
    [err('AccessDenied', 403), 'permission'],
    [err('Forbidden', 403), 'permission'],
    [err('NoSuchBucket', 404), 'no-bucket'],
    [err('NoSuchKey', 404), 'not-found'],
    [err('CredentialsProviderError', undefined), 'credentials'],
    [err('InvalidArgument', 400), 'other'],
  ])('case %#', (e, kind) => {
    expect(classifyS3(s3Reply(e))).toBe(kind);
  });
  test('keeps status, code and attempts', () => {
    expect(s3Reply(err('SlowDown', 503))).toEqual({ service: 's3', status: 503, code: 'SlowDown', attempts: 6 });
  });
});

describe('failure-issue marker', () => {
  test.each(['nightly} --> <!-- db', 'a"b\\c', 'line\nbreak', '<script>-->', 'plain'])('%j round-trips', (key) => {
    const body = `text before\n${stateMarker({ key, since: '2026-01-01T00:00:00Z', failures: 3 })}\ntext after -->`;
    expect(readState(body)).toEqual({ key, since: '2026-01-01T00:00:00Z', failures: 3 });
    expect(stateMarker({ key, since: 'x', failures: 1 }).match(/-->/g)).toHaveLength(1);
  });
});

describe('readChecksFile', () => {
  const ws = mkdtempSync(path.join(os.tmpdir(), 'pba-ws-'));
  const outside = mkdtempSync(path.join(os.tmpdir(), 'pba-out-'));
  mkdirSync(path.join(ws, 'checks'));
  writeFileSync(
    path.join(ws, 'checks', 'ok.sql'),
    '-- note\nSELECT true;\nWITH x AS (SELECT 1) SELECT * FROM x WHERE false;',
  );
  writeFileSync(path.join(ws, 'checks', 'env.sql'), 'DATABASE_URL=postgres://u:hunter2@h/db\n');
  writeFileSync(path.join(ws, 'checks', 'empty.sql'), '-- nothing\n');
  writeFileSync(path.join(outside, 'x.sql'), 'SELECT true;');
  symlinkSync(path.join(outside, 'x.sql'), path.join(ws, 'link.sql'));

  test('reads a .sql file inside the workspace', () => {
    expect(readChecksFile('checks-sql', 'checks/ok.sql', ws)).toMatchObject({ path: path.join('checks', 'ok.sql') });
  });
  test.each([
    ['../x.sql', /cannot read|outside the workspace/],
    [path.join(outside, 'x.sql'), /outside the workspace/],
    ['link.sql', /outside the workspace/],
    ['checks/../../etc/passwd', /not a `\.sql` file/],
    ['checks/env.sql', /statement 1 .* does not start with an SQL command/],
    ['checks/empty.sql', /holds no SQL statement/],
    ['checks', /not a `\.sql` file/],
  ])('refuses %s', (file, problem) => {
    let message = '';
    try {
      readChecksFile('checks-sql', file, ws);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^Input `checks-sql`: /);
    expect(message).toMatch(problem);
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('DATABASE_URL');
  });
});
