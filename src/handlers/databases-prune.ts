import { writeFileSync } from 'node:fs';
import { formatBytes } from '../lib/log.js';
import type { RunIO } from '../lib/runtime.js';
import type { ObjectStore } from '../lib/s3.js';
import {
  cell,
  failuresError,
  forEach,
  selectStreams,
  sumOf,
  type DatabaseSelection,
  type StreamFailure,
} from '../core/multi-database.js';
import { deletionFailures, pruneS3, pruneSummary, type PruneReport, type PruneSettings } from '../core/prune.js';

/** prune-retention with `databases`: each stream pruned under its own `<prefix>/<stream>/`, one summary. */
export async function pruneStreams(
  store: ObjectStore,
  prefix: string,
  selection: DatabaseSelection,
  settings: PruneSettings,
  io: RunIO,
): Promise<void> {
  const streams = await selectStreams(store, prefix, selection);
  io.log.info(`Applying retention to ${streams.length} stream(s): ${streams.join(', ')}`);
  const planFile = (s: string) => settings.planFile.replace(/\.json$/, `-${s}.json`);
  const run = await forEach(
    streams,
    io.log,
    (s) => `Retention of stream ${s}`,
    (database) => pruneS3(store, { prefix, database, ...settings, planFile: planFile(database) }, { log: io.log }),
  );
  const reports = run.done.map(({ item, value }) => ({ stream: item, report: value }));
  writeFileSync(
    settings.planFile,
    JSON.stringify(
      reports.map((x) => ({ stream: x.stream, ...x.report })),
      null,
      2,
    ) + '\n',
  );
  io.setOutput(
    'kept',
    sumOf(reports, (x) => x.report.keep.length),
  );
  io.setOutput(
    'deleted',
    sumOf(reports, (x) => x.report.remove.length),
  );
  io.setOutput(
    'freed-bytes',
    sumOf(reports, (x) => x.report.freedBytes),
  );
  io.setOutput(
    'locked',
    sumOf(reports, (x) => x.report.locked.length),
  );
  io.setOutput('plan-file', settings.planFile);
  const failures: StreamFailure[] = [
    ...run.failures,
    ...reports
      .filter((x) => x.report.failures.length)
      .map((x) => ({
        name: x.stream,
        error: deletionFailures(x.report, 's3').message,
      })),
  ];
  await io.summary(pruneStreamsSummary(settings.dryRun, reports, run.failures));
  if (failures.length) throw failuresError('Retention', streams.length, failures);
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
