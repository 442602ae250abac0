import { choosePgRestore, parseArchiveHeader, versionMajor } from '../../src/lib/dump-version.js';
import type { PgTool } from '../../src/lib/pgtools.js';

// The first 120 bytes of a real archive: `pg_dump -Fc -Z0` 15.18 (Debian) of database "postgres".
const PG15_HEADER = Buffer.from(
  '5047444d50010e000408010000000000002600000000170000000011000000001b000000000a000000007e00000000000000000008000000' +
    '706f737467726573001e00000031352e3138202844656269616e2031352e31382d302b6465623132753129001e00000031352e31382028' +
    '44656269616e2031352e31382d302b6465623132753129',
  'hex',
);

function str(s: string): Buffer {
  const len = Buffer.alloc(5);
  len.writeUInt32LE(Buffer.byteLength(s), 1);
  return Buffer.concat([len, Buffer.from(s)]);
}

/** A format 1.16 header (pg_dump 17): one compression-algorithm byte instead of the compression level. */
function header116(server: string, dumper: string): Buffer {
  const time = Buffer.alloc(35); // seven zero ints
  return Buffer.concat([
    Buffer.from('PGDMP'),
    Buffer.from([1, 16, 0, 4, 8, 1]),
    Buffer.from([3]), // zstd
    time,
    str('app'),
    str(server),
    str(dumper),
  ]);
}

describe('parseArchiveHeader', () => {
  test.each<[string, Buffer, ReturnType<typeof parseArchiveHeader>]>([
    [
      'pg_dump 15 (format 1.14)',
      PG15_HEADER,
      {
        formatVersion: '1.14',
        database: 'postgres',
        serverVersion: '15.18 (Debian 15.18-0+deb12u1)',
        pgDumpVersion: '15.18 (Debian 15.18-0+deb12u1)',
      },
    ],
    [
      'pg_dump 17 (format 1.16)',
      header116('16.4', '17.2 (Ubuntu 17.2-1.pgdg24.04+1)'),
      {
        formatVersion: '1.16',
        database: 'app',
        serverVersion: '16.4',
        pgDumpVersion: '17.2 (Ubuntu 17.2-1.pgdg24.04+1)',
      },
    ],
    ['cut short inside the version strings', PG15_HEADER.subarray(0, 100), undefined],
    ['not an archive (plain SQL)', Buffer.from('--\n-- PostgreSQL database dump\n--\n'), undefined],
    ['empty', Buffer.alloc(0), undefined],
  ])('%s', (_name, bytes, expected) => {
    expect(parseArchiveHeader(bytes)).toEqual(expected);
  });
});

describe('versionMajor', () => {
  test.each<[string | undefined, number | undefined]>([
    ['15.18 (Debian 15.18-0+deb12u1)', 15],
    ['17.2', 17],
    ['18beta1', 18],
    ['9.6.24', 9],
    ['', undefined],
    [undefined, undefined],
    ['unknown', undefined],
  ])('%s -> %s', (v, major) => expect(versionMajor(v)).toBe(major));
});

describe('choosePgRestore: the newest installed pg_restore at least as new as the dump', () => {
  const tool = (major: number): PgTool => ({
    path: `/usr/lib/postgresql/${major}/bin/pg_restore`,
    major,
    version: `${major}.1`,
  });
  test.each<[number[], number, number | undefined]>([
    [[15], 15, 15],
    [[15, 16, 17], 15, 17],
    [[17, 15, 16], 16, 17],
    [[15, 16], 17, undefined],
    [[], 15, undefined],
    [[18, 14], 14, 18],
  ])('installed %j, dump from pg_dump %i -> %s', (installed, dumpMajor, expected) => {
    expect(choosePgRestore(installed.map(tool), dumpMajor)?.major).toBe(expected);
  });
});
