import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inputError, UserError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import type { RunIO } from '../lib/runtime.js';
import { ObjectStore } from '../lib/s3.js';
import { readS3Options } from './inputs/s3.js';
import { planRetention } from '../core/retention.js';
import {
  deletionFailures,
  pruneNeon,
  pruneNeonSnapshots,
  pruneS3,
  pruneSummary,
  type PruneReport,
  type PruneSettings,
} from '../core/prune.js';
import { neonApi, readNeonAccess, type NeonAccess } from './inputs/neon.js';
import { readDatabaseSelection } from './inputs/databases.js';
import { readPolicy, readTimeZone } from './inputs/retention.js';
import { failuresError } from '../core/multi-database.js';
import { pruneStreams } from '../core/prune-streams.js';

function readSettings(inputs: InputReader): PruneSettings {
  const dir = process.env.RUNNER_TEMP || mkdtempSync(path.join(os.tmpdir(), 'pba-prune-'));
  return {
    policy: readPolicy(inputs),
    timeZone: readTimeZone(inputs),
    kind: inputs.optional('kind'),
    incompleteGraceSeconds: inputs.seconds('incomplete-grace'),
    dryRun: inputs.bool('dry-run'),
    planFile: path.join(dir, `retention-plan-${Date.now()}.json`),
  };
}

/** Every input of prune-retention read and checked before any call, as one object per target. */
export type PruneRequest =
  | {
      target: 'neon' | 'neon-snapshots';
      access: NeonAccess;
      branchPrefix: string;
      timeoutSeconds: number;
      settings: PruneSettings;
    }
  | {
      target: 's3';
      s3: ReturnType<typeof readS3Options>;
      /** `databases` / `all`, or else the one `database`. */
      streams: { selection: NonNullable<ReturnType<typeof readDatabaseSelection>> } | { database: string };
      settings: PruneSettings;
    };

export function readPruneRequest(inputs: InputReader): PruneRequest {
  const target = inputs.oneOf('target', ['s3', 'neon', 'neon-snapshots'] as const);
  if (target === 's3') {
    const s3 = readS3Options(inputs);
    const selection = readDatabaseSelection(inputs);
    const streams = selection
      ? { selection }
      : { database: inputs.keyPart('database', { path: false, value: inputs.required('database') }) };
    return { target, s3, streams, settings: readSettings(inputs) };
  }
  if (inputs.list('databases').length)
    throw inputError(
      'databases',
      'applies to `target: s3` only',
      'Neon snapshots are not per database; clear `databases` (select them with `branch-prefix`).',
    );
  const access = readNeonAccess(inputs);
  const settings = readSettings(inputs);
  if (settings.kind) {
    throw inputError(
      'kind',
      'applies to S3 backups only',
      'Neon snapshots have no kind; select them with `branch-prefix` instead.',
    );
  }
  const branchPrefix = inputs.string('branch-prefix');
  if (!branchPrefix) {
    throw inputError(
      'branch-prefix',
      'is empty',
      'Give the prefix of the snapshot names (`backup-` by default): without one, every branch or snapshot would be a candidate.',
    );
  }
  return { target, access, branchPrefix, timeoutSeconds: inputs.seconds('timeout'), settings };
}

export async function pruneRetention(inputs: InputReader, io: RunIO): Promise<void> {
  const request = readPruneRequest(inputs);
  const { settings } = request;
  let report: PruneReport;
  if (request.target === 's3') {
    const store = ObjectStore.fromOptions(request.s3);
    const { streams } = request;
    if ('selection' in streams) {
      const r = await pruneStreams(store, request.s3.prefix, streams.selection, settings, { log: io.log });
      io.setOutput('kept', r.kept);
      io.setOutput('deleted', r.deleted);
      io.setOutput('freed-bytes', r.freedBytes);
      io.setOutput('locked', r.locked);
      io.setOutput('plan-file', settings.planFile);
      await io.summary(r.summary);
      if (r.failures.length) throw failuresError('Retention', r.streams.length, r.failures);
      return;
    }
    report = await pruneS3(
      store,
      { prefix: request.s3.prefix, database: streams.database, ...settings },
      { log: io.log },
    );
  } else {
    const neon = neonApi(request.access, io, request.timeoutSeconds);
    const prune = request.target === 'neon' ? pruneNeon : pruneNeonSnapshots;
    const { projectId } = request.access;
    report = await prune(neon, { projectId, branchPrefix: request.branchPrefix, ...settings }, { log: io.log });
  }
  io.setOutput('kept', report.keep.length);
  io.setOutput('deleted', report.remove.length);
  io.setOutput('freed-bytes', report.freedBytes);
  io.setOutput('locked', report.locked.length);
  io.setOutput('plan-file', settings.planFile);
  await io.summary(pruneSummary(report));
  if (report.failures.length) throw deletionFailures(report, request.target);
}

interface TimelineEntry {
  time: string;
  id?: string;
}

/** CLI `plan-retention`: a JSON array of times (or {time, id}) on stdin, the plan on stdout; touches no storage. */
export async function planRetentionCommand(inputs: InputReader, io: RunIO): Promise<void> {
  const policy = readPolicy(inputs);
  const timeZone = readTimeZone(inputs);
  const text = (await io.stdin?.()) ?? '';
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UserError(
      'plan-retention reads a JSON array on standard input: ["2026-11-21T02:00:00Z", ...] or [{"time": "...", "id": "..."}, ...].',
    );
  }
  if (!Array.isArray(data))
    throw new UserError('plan-retention: standard input must be a JSON array of timestamps or {time, id} objects.');
  const entries: TimelineEntry[] = data.map((d, i) => {
    const e: TimelineEntry = typeof d === 'string' ? { time: d } : (d as TimelineEntry);
    if (typeof e?.time !== 'string' || Number.isNaN(Date.parse(e.time))) {
      throw new UserError(`plan-retention: entry ${i} (${JSON.stringify(d)}) has no ISO-8601 \`time\`.`);
    }
    return e;
  });
  const plan = planRetention(
    entries.map((e, i) => ({ id: e.id ?? String(i), time: new Date(e.time), item: e })),
    policy,
    { timeZone },
  );
  io.result?.({
    keep: plan.keep.map((k) => ({ time: k.item.time, id: k.item.id ?? null, reasons: k.reasons })),
    remove: plan.remove.map((r) => ({ time: r.item.time, id: r.item.id ?? null })),
  });
}
