import { verificationPoint } from '../../src/core/neon-verify.js';
import { isNeonVerificationKey } from '../../src/core/catalog.js';
import type { Manifest } from '../../src/lib/manifest.js';
import { lsnValue, snapshotLsnFields } from '../../src/lib/wal-lsn.js';

const manifest = (extra: Partial<Manifest>) =>
  ({ startedAt: '2026-11-21T02:00:00.000Z', snapshotAt: '2026-11-21T02:00:00.301Z', ...extra }) as Manifest;

test.each<[string, string, ReturnType<typeof snapshotLsnFields>]>([
  ['0/1F2A3B8', '0/1F2A3B8', { snapshotLsn: '0/1F2A3B8' }],
  ['0/1F2A3B8', '0/1F2A400', { snapshotLsn: '0/1F2A3B8', snapshotLsnAfter: '0/1F2A400', snapshotLsnApproximate: true }],
])('snapshotLsnFields(%s, %s)', (before, after, expected) => {
  expect(snapshotLsnFields(before, after)).toEqual(expected);
});

test.each<[Partial<Manifest>, { lsn?: string; timestamp?: Date }, ReturnType<typeof verificationPoint>]>([
  [{ snapshotLsn: '0/16B3748' }, {}, { point: { lsn: '0/16B3748' }, pointFrom: 'snapshotLsn', approximate: false }],
  [
    { snapshotLsn: '0/16B3748', snapshotLsnAfter: '0/16B3800', snapshotLsnApproximate: true },
    {},
    { point: { lsn: '0/16B3748' }, pointFrom: 'snapshotLsn', approximate: true },
  ],
  [{}, {}, { point: { timestamp: new Date('2026-11-21T02:00:00.301Z') }, pointFrom: 'snapshotAt', approximate: true }],
  [{ snapshotLsn: '0/16B3748' }, { lsn: '1/0' }, { point: { lsn: '1/0' }, pointFrom: 'input', approximate: false }],
])('verificationPoint(%j, %j)', (m, given, expected) => {
  expect(verificationPoint(manifest(m), given)).toEqual(expected);
});

test('LSNs order numerically, and Neon records are told apart by key', () => {
  expect(lsnValue('1/0')).toBeGreaterThan(lsnValue('0/FFFFFFFF'));
  expect(lsnValue('0/A')).toBe(10);
  expect(isNeonVerificationKey('p/db/20261121T020000Z-3f9a/verifications/20261121T030000Z-neon-ab12.json')).toBe(true);
  expect(isNeonVerificationKey('p/db/20261121T020000Z-3f9a/verifications/20261121T030000Z-ab12.json')).toBe(false);
});
