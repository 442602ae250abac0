import { checkFreeSpace, diskPlan, restorableBytes } from '../../src/core/artifact-fetch.js';
import { zstdSummary } from '../../src/lib/dump-pipeline.js';
import type { Artifact, Manifest } from '../../src/lib/manifest.js';

const artifact = (over: Partial<Artifact>): Artifact => ({
  name: 'dump',
  key: 'k',
  bytes: 1000,
  sha256: 'x',
  format: 'custom',
  compression: 'zstd',
  encryption: null,
  ...over,
});
const manifest = (artifacts: Artifact[]) => ({ artifacts }) as unknown as Manifest;

test.each([
  [
    'zstd 1.5',
    '/*stdin*\\            :  0.00%   (200000000 B =>   6788 B, /*stdout*\\) ',
    { read: 200000000, wrote: 6788 },
  ],
  [
    'zstd 1.4',
    '/*stdin*\\            : 35.40%   (104857600 => 37120000 bytes, /*stdout*\\) ',
    { read: 104857600, wrote: 37120000 },
  ],
  ['no summary (zstd failed)', 'zstd: error 70 : Write error', undefined],
  ['human units only', '/*stdin*\\ : 75.37%   (  15.9 MiB =>   12.0 MiB, /*stdout*\\)', undefined],
])('zstd sizes from its summary line: %s', (_name, stderr, expected) => {
  expect(zstdSummary(stderr)).toEqual(expected);
});

test.each([
  ['zstd with its decompressed size', artifact({ uncompressedBytes: 5000 }), 5000],
  ['zstd from an older writer: unknown', artifact({}), undefined],
  ["gzip (pg_dump's own, read as stored)", artifact({ compression: 'gzip' }), 1000],
  ['none', artifact({ compression: 'none' }), 1000],
])('restorable size: %s', (_name, a, expected) => {
  expect(restorableBytes(a)).toBe(expected);
});

test('disk plan: the decompressed dump plus the globals script; a lower bound when the size is unknown', () => {
  const globals = artifact({ name: 'globals', format: 'sql', bytes: 10, uncompressedBytes: 40 });
  expect(diskPlan(manifest([artifact({ uncompressedBytes: 5000 }), globals]))).toMatchObject({
    needBytes: 5040,
    exact: true,
  });
  expect(diskPlan(manifest([artifact({})]))).toMatchObject({ needBytes: 1000, exact: false });
});

test('free-space check: passes when it fits, names jobs and where to make room when it does not, and skips an unknown free size', () => {
  const plan = { needBytes: 3 * 1024 ** 3, exact: true, what: 'the decompressed dump' };
  expect(() => checkFreeSpace('/tmp/x', plan, 4 * 1024 ** 3)).not.toThrow();
  expect(() => checkFreeSpace('/tmp/x', plan, undefined)).not.toThrow();
  expect(() => checkFreeSpace('/tmp/x', plan, 1024 ** 3)).toThrow(
    /keeps the decompressed dump in \/tmp\/x, 3\.0 GiB, and only 1\.0 GiB is free there\. Nothing was downloaded\. Back up with `jobs: 2` or more \(pgdump-to-s3\) so that verify-restore streams the data into pg_restore without a local copy.*RUNNER_TEMP \(the CLI: TMPDIR\)/,
  );
  expect(() => checkFreeSpace('/tmp/x', { ...plan, exact: false }, 1024 ** 3)).toThrow(/at least 3\.0 GiB/);
});
