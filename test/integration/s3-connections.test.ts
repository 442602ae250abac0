// The store's client as the actions make it (ObjectStore.fromOptions) keeps its connections: the parts of a
// multipart upload and the small objects after it share the few the upload's concurrency needs, instead of one
// connection (and on https one TLS handshake) per part.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../../src/lib/s3.js';
import { startDiscardS3, type DiscardS3 } from '../harness/discard-s3.js';

const PART = 5 << 20;
let endpoint: DiscardS3;
const saved = { ...process.env };

beforeAll(async () => {
  endpoint = await startDiscardS3({ check: true });
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1' });
});
afterAll(async () => {
  process.env = saved;
  await endpoint?.stop();
});

test('eight parts, two in flight, then two small objects: at most three connections', async () => {
  const store = ObjectStore.fromOptions({
    bucket: 'bucket',
    prefix: '',
    region: 'us-east-1',
    endpoint: endpoint.endpoint,
    forcePathStyle: true,
    checksum: 'when-required',
  });
  const data = randomBytes(8 * PART);
  const up = await store.uploadStream('k/dump', Readable.from([data]), { partSizeBytes: PART, queueSize: 2 });
  expect(up.bytes).toBe(data.length);
  await store.putText('k/RECOVERY.md', '# recovery\n', 'text/markdown');
  await store.putJson('k/manifest.json', { formatVersion: 1 });
  expect(endpoint.writes().filter((w) => w.kind === 'part')).toHaveLength(8);
  expect(endpoint.connections()).toBeLessThanOrEqual(3);
  (await store.open()).client.destroy();
});
