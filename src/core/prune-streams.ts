/** prune-retention over several streams (`databases`): each stream pruned under its own `<prefix>/<stream>/`. */
import { localFiles, type Files } from '../lib/files.js';
import { formatBytes, type Logger } from '../lib/log.js';
import type { ObjectStore } from '../lib/s3.js';
import { cell, forEach, selectStreams, sumOf, type DatabaseSelection, type StreamFailure } from './multi-database.js';
import { deletionFailures, pruneS3, pruneSummary, type PruneReport, type PruneSettings } from './prune.js';

export interface StreamsPruneResult {
  streams: string[];
  reports: { stream: string; report: PruneReport }[];
  /** Totals over every stream pruned, for the action's outputs. */
  kept: number;
  deleted: number;
  freedBytes: number;
  locked: number;
  /** Streams that failed: whole (listing, planning) or in part (a deletion). */
  failures: StreamFailure[];
  /** The job summary: one table, then each stream's own. */
  summary: string;
}

/** Prunes each selected stream and writes one plan file with every stream's plan; never throws for one stream. */
export async function pruneStreams(
  store: ObjectStore,
  prefix: string,
  selection: DatabaseSelection,
  settings: PruneSettings,
  deps: { log: Logger; files?: Files },
): Promise<StreamsPruneResult> {
  const { log } = deps;
  const files = deps.files ?? localFiles;
  const streams = await selectStreams(store, prefix, selection);
  log.info(`Applying retention to ${streams.length} stream(s): ${streams.join(', ')}`);
  const planFile = (s: string) => settings.planFile.replace(/\.json$/, `-${s}.json`);
  const run = await forEach(
    streams,
    log,
    (s) => `Retention of stream ${s}`,
    (database) => pruneS3(store, { prefix, database, ...settings, planFile: planFile(database) }, { log, files }),
  );
  const reports = run.done.map(({ item, value }) => ({ stream: item, report: value }));
  files.writeText(
    settings.planFile,
    JSON.stringify(
      reports.map((x) => ({ stream: x.stream, ...x.report })),
      null,
      2,
    ) + '\n',
  );
  const failures: StreamFailure[] = [
    ...run.failures,
    ...reports
      .filter((x) => x.report.failures.length)
      .map((x) => ({
        name: x.stream,
        error: deletionFailures(x.report, 's3').message,
      })),
  ];
  return {
    streams,
    reports,
    kept: sumOf(reports, (x) => x.report.keep.length),
    deleted: sumOf(reports, (x) => x.report.remove.length),
    freedBytes: sumOf(reports, (x) => x.report.freedBytes),
    locked: sumOf(reports, (x) => x.report.locked.length),
    failures,
    summary: pruneStreamsSummary(settings.dryRun, reports, run.failures),
  };
}

function pruneStreamsSummary(
  dryRun: boolean,
  reports: { stream: string; report: PruneReport }[],
  errors: StreamFailure[],
): string {
  const lines = [
    `## Retention over ${reports.length + errors.length} stream(s)${dryRun ? ' (dry run: nothing deleted)' : ''}`,
    '',
    `| Stream | Kept | ${dryRun ? 'Would delete' : 'Deleted'} | Freed | Locked | Failures |`,
    '|---|---|---|---|---|---|',
  ];
  for (const { stream, report } of reports)
    lines.push(
      `| \`${stream}\` | ${report.keep.length} | ${report.remove.length} | ${formatBytes(report.freedBytes)} | ${report.locked.length || ''} | ${report.failures.length || ''} |`,
    );
  for (const f of errors) lines.push(`| \`${f.name}\` | | | | | ❌ ${cell(f.error)} |`);
  lines.push('');
  for (const { report } of reports) lines.push(pruneSummary(report).replace(/^## /gm, '### '));
  return lines.join('\n');
}
