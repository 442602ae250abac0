import { UserError } from '../lib/errors.js';
import { formatBytes, formatSeconds } from '../lib/log.js';
import { connectPg } from '../lib/pg-client.js';
import type { PgTarget } from '../lib/pg-url.js';
import { runBackup, type BackupDeps, type BackupOptions, type BackupResult } from './backup.js';
import {
  cell,
  forEach,
  planDatabases,
  streamName,
  type DatabasePlan,
  type DatabaseSelection,
  type ServerDatabase,
  type StreamFailure,
} from './multi-database.js';

/** Lists the server's databases through the connection URL's own database. */
export async function listServerDatabases(source: PgTarget): Promise<ServerDatabase[]> {
  const client = await connectPg(source, 'database-url');
  try {
    const res = await client.query<ServerDatabase>(
      `SELECT datname AS name, datistemplate AS template, datallowconn AS "allowConnections",
              has_database_privilege(oid, 'CONNECT') AS "canConnect"
       FROM pg_database ORDER BY datname`,
    );
    return res.rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface MultiBackupResult {
  plan: DatabasePlan;
  results: { database: string; result: BackupResult }[];
  failures: StreamFailure[];
  durationSeconds: number;
}

/** Backs up each selected database in turn, each as its own stream, exactly as a single-database backup. */
export async function runBackups(
  base: BackupOptions,
  selection: DatabaseSelection,
  deps: BackupDeps,
): Promise<MultiBackupResult> {
  const t0 = performance.now();
  const plan = planDatabases(await listServerDatabases(base.source), selection, base.source.user);
  for (const s of plan.skipped) deps.log.warn(`Skipped database "${s.database}": ${s.reason}.`);
  const failures: StreamFailure[] = plan.refused.map((r) => ({
    name: r.database,
    error: `cannot be backed up: ${r.reason}. Check \`databases\`.`,
  }));
  for (const f of failures) deps.log.error(`Database "${f.name}" ${f.error}`);
  if (plan.selected.length === 0 && failures.length === 0) {
    throw new UserError(
      `Input \`databases\`: \`all\` selected no database on ${base.source.host}:${base.source.port}${plan.skipped.length ? ` (${plan.skipped.length} skipped: ${plan.skipped.map((s) => `"${s.database}"`).join(', ')})` : ''}. Check \`exclude-databases\` and that role "${base.source.user}" has CONNECT on the databases to back up.`,
    );
  }
  deps.log.info(
    `Backing up ${plan.selected.length} database(s): ${plan.selected.map((d) => `"${d}"`).join(', ')}${plan.skipped.length ? `; skipped ${plan.skipped.length}` : ''}`,
  );
  const run = await forEach(
    plan.selected,
    deps.log,
    (d) => `Backup of database "${d}"`,
    (database) => runBackup({ ...base, source: { ...base.source, database }, database: streamName(database) }, deps),
  );
  failures.push(...run.failures);
  const results = run.done.map(({ item, value }) => ({ database: item, result: value }));
  return { plan, results, failures, durationSeconds: (performance.now() - t0) / 1000 };
}

/** One job summary table for a multi-database backup. */
export function backupsSummary(r: MultiBackupResult, bucket: string): string {
  const total = r.results.length + r.failures.length;
  const lines = [
    `## Backup of ${total} database(s): ${r.results.length} completed${r.failures.length ? `, ${r.failures.length} failed` : ''}${r.plan.skipped.length ? `, ${r.plan.skipped.length} skipped` : ''}`,
    '',
    '| Database | Stream | Result | Backup id | Size | Tables | Rows | Duration |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { database, result } of r.results) {
    const m = result.manifest;
    lines.push(
      `| \`${cell(database)}\` | \`${m.database}\` | ✅ completed | \`${m.backupId}\` | ${formatBytes(result.bytes)} | ${m.tables.length} | ${result.rows.toLocaleString('en-US')} | ${formatSeconds(result.durationSeconds)} |`,
    );
  }
  for (const f of r.failures)
    lines.push(`| \`${cell(f.name)}\` | \`${streamName(f.name)}\` | ❌ failed: ${cell(f.error)} | | | | | |`);
  for (const s of r.plan.skipped) lines.push(`| \`${cell(s.database)}\` | | ⏭️ skipped: ${cell(s.reason)} | | | | | |`);
  lines.push('', `Manifests under \`s3://${bucket}/\`; total wall time ${formatSeconds(r.durationSeconds)}.`, '');
  return lines.join('\n');
}

/** The `backups` output: one object per completed backup. */
export function backupsOutput(results: { database: string; result: BackupResult }[]): string {
  return JSON.stringify(
    results.map(({ database, result }) => ({
      database,
      stream: result.manifest.database,
      'backup-id': result.manifest.backupId,
      'manifest-key': result.manifestKey,
      bytes: result.bytes,
    })),
  );
}
