import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { getObjectBytes, listKeys } from './index.js';

/**
 * The store's invariant under any fault: every manifest in the bucket names objects that exist, with the size and
 * SHA-256 it records. Returns the violations (empty when it holds), read straight from the server, not the proxy.
 */
export async function manifestViolations(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const problems: string[] = [];
  for (const key of (await listKeys(client, bucket, prefix)).filter((k) => k.endsWith('/manifest.json'))) {
    const manifest = JSON.parse((await getObjectBytes(client, bucket, key)).toString()) as {
      artifacts: { key: string; bytes: number; sha256: string }[];
    };
    for (const a of manifest.artifacts) {
      const exists = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: a.key })).then(
        () => true,
        () => false,
      );
      if (!exists) {
        problems.push(`${key} names ${a.key}, which does not exist`);
        continue;
      }
      const body = await getObjectBytes(client, bucket, a.key);
      if (body.length !== a.bytes) problems.push(`${a.key}: ${body.length} bytes, manifest says ${a.bytes}`);
      const sha = createHash('sha256').update(body).digest('hex');
      if (sha !== a.sha256) problems.push(`${a.key}: SHA-256 ${sha}, manifest says ${a.sha256}`);
    }
  }
  return problems;
}

/** The ids of the backups under a database prefix that have a manifest. */
export async function manifestIds(client: S3Client, bucket: string, dbPrefix: string): Promise<string[]> {
  return (await listKeys(client, bucket, dbPrefix))
    .filter((k) => k.endsWith('/manifest.json'))
    .map((k) => k.slice(dbPrefix.length).split('/')[0]!)
    .sort();
}

/** Seeds complete fake backups (a real SHA-256 of their "dump") straight into the server. */
export async function seedBackups(
  client: S3Client,
  bucket: string,
  count: number,
  verifiedIndex?: number,
): Promise<string[]> {
  const ids: string[] = [];
  const start = Date.UTC(2026, 0, 1);
  const puts: (() => Promise<unknown>)[] = [];
  for (let i = 0; i < count; i++) {
    const t = new Date(start + i * 3600_000);
    const id = `${t
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z')
      .replace(/[-:]/g, '')}-${(i % 65536).toString(16).padStart(4, '0')}`;
    ids.push(id);
    const base = `postgres-backups/app/${id}/`;
    const dump = `dump of ${id}`;
    const put = (key: string, body: string) => () =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: base + key, Body: body }));
    puts.push(put('dump.pgdump.zst', dump));
    puts.push(
      put(
        'manifest.json',
        JSON.stringify({
          formatVersion: 1,
          backupId: id,
          kind: 'scheduled',
          startedAt: t.toISOString(),
          completedAt: t.toISOString(),
          artifacts: [
            {
              name: 'dump',
              key: base + 'dump.pgdump.zst',
              bytes: dump.length,
              sha256: createHash('sha256').update(dump).digest('hex'),
            },
          ],
          tables: [],
        }),
      ),
    );
    puts.push(
      put(
        `verifications/${id.slice(0, 16)}.json`,
        JSON.stringify({ formatVersion: 1, backupId: id, status: i === verifiedIndex ? 'passed' : 'failed' }),
      ),
    );
  }
  for (let i = 0; i < puts.length; i += 64) await Promise.all(puts.slice(i, i + 64).map((p) => p()));
  return ids;
}
