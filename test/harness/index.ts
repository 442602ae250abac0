import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './run-action.js';
import type { TestPostgres } from './postgres.js';

export * from './postgres.js';
export * from './s3.js';
export * from './run-action.js';

export function fixture(name: string): string {
  return readFileSync(path.join(repoRoot, 'test/fixtures', name), 'utf8');
}

export function tempDir(prefix = 'pba-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function getObjectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((c) => c.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function openMultipartUploads(client: S3Client, bucket: string): Promise<number> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).length;
}

/** Runs a program (no shell) with stdin from a buffer; resolves with stdout, rejects on a non-zero exit. */
export async function exec(cmd: string, args: string[], input?: Buffer, env?: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${cmd} exited ${code}: ${err}`)),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** Exact row counts of every table (relkind r) outside system schemas, keyed `schema.name`. */
export const COUNT_ALL_SQL = `
  SELECT n.nspname AS schema, c.relname AS name,
         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS rows
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  ORDER BY 1, 2`;

/** Exact row count of every table of a database, keyed `schema.name`. */
export async function tableCounts(pg: TestPostgres, database: string): Promise<Map<string, number>> {
  const rows = await pg.query<{ schema: string; name: string; rows: string }>(COUNT_ALL_SQL, database);
  return new Map(rows.map((r) => [`${r.schema}.${r.name}`, Number(r.rows)]));
}
