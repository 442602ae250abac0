import { inputError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import type { Branch, ScheduleItem } from '../lib/neon.js';
import { parseSchedule } from '../lib/neon-schedule.js';
import { maskConnectionUrl } from '../lib/pg-url.js';
import type { RunIO } from '../lib/runtime.js';
import type { InputName } from '../spec.js';
import { neonApi, readNeonAccess, readPointInTime, rfc3339, type NeonAccess } from './inputs/neon.js';
import {
  applyNeonSchedule,
  createNeonSnapshot,
  createSnapshotSummary,
  finalizeNeonRestore,
  restoreNeonSnapshot,
  restoreSnapshotSummary,
  scheduleSummary,
  type FinalizeOptions,
  type RestoreSnapshotOptions,
} from '../core/neon-snapshots.js';
import {
  MAX_EXPIRY_SECONDS,
  neonRestore,
  neonSnapshot,
  restoreSummary,
  snapshotSummary,
  type PointInTime,
} from '../core/neon-snapshot.js';

type Mode = 'snapshot' | 'restore' | 'restore-snapshot' | 'finalize-restore' | 'schedule';

/** Inputs that only some modes read: set with another mode they would be silently ignored, so they are refused. */
const ONLY_IN: [InputName, Mode[]][] = [
  ['timestamp', ['snapshot', 'restore']],
  ['lsn', ['snapshot', 'restore']],
  ['snapshot', ['restore-snapshot']],
  ['schedule', ['schedule']],
  ['source-branch', ['restore']],
];

/** Every input of neon-snapshot read and checked before any API call: the API access and one task per mode. */
export interface NeonSnapshotRequest {
  access: NeonAccess;
  timeoutSeconds: number;
  task: NeonSnapshotTask;
}

export type NeonSnapshotTask =
  | {
      mode: 'restore';
      pit: PointInTime;
      branch: string;
      sourceBranch?: string;
      preserveUnderName?: string;
      confirm?: string;
    }
  | {
      mode: 'snapshot';
      method: 'branch' | 'snapshot';
      pit: PointInTime;
      branch?: string;
      name?: string;
      expiresAt?: Date;
      createEndpoint: boolean;
      database: string;
      role: string;
    }
  | ({ mode: 'restore-snapshot' } & Omit<RestoreSnapshotOptions, 'projectId'>)
  | ({ mode: 'finalize-restore'; confirm: string } & Omit<FinalizeOptions, 'projectId'>)
  | { mode: 'schedule'; branch?: string; schedule: ScheduleItem[]; dryRun: boolean };

function readExpiry(inputs: InputReader, method: 'branch' | 'snapshot'): Date | undefined {
  const expiresIn = inputs.durationSeconds('expires-in');
  const expiresAtInput = rfc3339('expires-at', inputs.optional('expires-at'));
  if (expiresIn !== undefined && expiresAtInput)
    throw inputError('expires-at', 'is set together with `expires-in`', 'Give one of them.');
  // Branches expire at most 30 days ahead; the Snapshots API states no bound.
  const max = method === 'branch' ? MAX_EXPIRY_SECONDS : Infinity;
  if (expiresIn !== undefined && (expiresIn <= 0 || expiresIn > max)) {
    throw inputError(
      'expires-in',
      `"${inputs.string('expires-in')}" is not ${method === 'branch' ? 'between 1 second and 30 days' : 'a positive duration'}`,
      method === 'branch' ? 'Neon expires branches at most 30 days ahead; use e.g. `7d`.' : 'Use e.g. `30d`.',
    );
  }
  const now = Date.now();
  if (expiresAtInput && (expiresAtInput.getTime() <= now || expiresAtInput.getTime() > now + max * 1000)) {
    throw inputError(
      'expires-at',
      `${expiresAtInput.toISOString()} is not ${method === 'branch' ? 'in the next 30 days' : 'in the future'}`,
      method === 'branch' ? 'Neon expires branches at most 30 days ahead.' : 'Give a future time.',
    );
  }
  return (
    expiresAtInput ??
    (expiresIn !== undefined ? new Date(Math.ceil((now + expiresIn * 1000) / 1000) * 1000) : undefined)
  );
}

export function readNeonSnapshotRequest(inputs: InputReader): NeonSnapshotRequest {
  return { access: readNeonAccess(inputs), timeoutSeconds: inputs.seconds('timeout'), task: readTask(inputs) };
}

function readTask(inputs: InputReader): NeonSnapshotTask {
  const mode = inputs.oneOf('mode', [
    'snapshot',
    'restore',
    'restore-snapshot',
    'finalize-restore',
    'schedule',
  ] as const);
  const method = inputs.oneOf('method', ['branch', 'snapshot'] as const);
  if (method === 'snapshot' && mode !== 'snapshot')
    throw inputError(
      'method',
      `\`snapshot\` applies to \`mode: snapshot\` only (mode is \`${mode}\`)`,
      'To restore a snapshot of the Snapshots API use `mode: restore-snapshot` with `snapshot`; leave `method` empty.',
    );
  for (const [name, modes] of ONLY_IN)
    if (inputs.optional(name) && !modes.includes(mode))
      throw inputError(
        name,
        `does not apply to \`mode: ${mode}\``,
        `Clear it, or use \`mode: ${modes.join('` / `')}\`.`,
      );
  const preserveUnderName = inputs.optional('preserve-under-name');
  const confirm = inputs.optional('confirm');
  switch (mode) {
    case 'restore':
      return {
        mode,
        pit: readPointInTime(inputs),
        branch: inputs.required('branch'),
        sourceBranch: inputs.optional('source-branch'),
        preserveUnderName,
        confirm,
      };
    case 'snapshot': {
      const createEndpoint = inputs.bool('create-endpoint');
      if (method === 'snapshot' && createEndpoint)
        throw inputError(
          'create-endpoint',
          'does not apply to `method: snapshot` (a snapshot has no compute)',
          'Restore the snapshot to a branch (`mode: restore-snapshot`) to query it, or use `method: branch`.',
        );
      return {
        mode,
        method,
        pit: readPointInTime(inputs),
        branch: inputs.optional('branch'),
        name: inputs.optional('name'),
        expiresAt: readExpiry(inputs, method),
        createEndpoint,
        database: inputs.string('database'),
        role: inputs.string('role'),
      };
    }
    case 'restore-snapshot': {
      const finalize = inputs.bool('finalize');
      const targetBranch = inputs.optional('target-branch');
      if (finalize && !targetBranch)
        throw inputError(
          'finalize',
          'is `true` without `target-branch`',
          'Name the branch the snapshot is to replace in `target-branch` (and in `confirm`), or set `finalize: false` to restore into a new branch.',
        );
      if (finalize && !confirm)
        throw inputError(
          'confirm',
          'is empty',
          `A finalized restore replaces branch "${targetBranch}": set \`confirm\` to its name to go ahead.`,
        );
      return {
        mode,
        snapshot: inputs.required('snapshot'),
        targetBranch,
        finalize,
        name: inputs.optional('name'),
        preserveUnderName,
        confirm,
      };
    }
    case 'finalize-restore': {
      const branch = inputs.required('branch');
      if (!confirm)
        throw inputError(
          'confirm',
          'is empty',
          "Finalizing replaces the restore's target branch: set `confirm` to that branch's name to go ahead.",
        );
      return { mode, branch, targetBranch: inputs.optional('target-branch'), preserveUnderName, confirm };
    }
    case 'schedule':
      return {
        mode,
        branch: inputs.optional('branch'),
        schedule: parseSchedule(inputs.string('schedule')),
        dryRun: inputs.bool('dry-run'),
      };
  }
}

export async function neonSnapshotAction(inputs: InputReader, io: RunIO): Promise<void> {
  const { access, timeoutSeconds, task: request } = readNeonSnapshotRequest(inputs);
  const neon = neonApi(access, io, timeoutSeconds);
  const { projectId } = access;
  const deps = { neon, log: io.log, cancel: io.cancel, run: io.run };
  switch (request.mode) {
    case 'restore': {
      const r = await neonRestore({ projectId, ...request, ...request.pit }, deps);
      setBranchOutputs(io, r.branch, false);
      io.setOutput('preserved-branch-id', r.preserved?.id ?? '');
      await io.summary(restoreSummary(r, request.pit));
      return;
    }
    case 'snapshot': {
      if (request.method === 'snapshot') {
        const r = await createNeonSnapshot({ projectId, ...request, ...request.pit }, deps);
        io.setOutput('snapshot-id', r.snapshot.id);
        io.setOutput('created', String(r.created));
        io.setOutput('branch-id', r.source.id);
        io.setOutput('branch-name', r.source.name);
        io.setOutput('parent-lsn', r.snapshot.lsn ?? '');
        io.setOutput('parent-timestamp', r.snapshot.timestamp ?? '');
        io.setOutput('expires-at', r.snapshot.expires_at ?? '');
        await io.summary(createSnapshotSummary(r));
        return;
      }
      const r = await neonSnapshot({ projectId, ...request, ...request.pit }, deps);
      if (r.databaseUrl) maskConnectionUrl(r.databaseUrl, io.log);
      setBranchOutputs(io, r.branch, r.created);
      io.setOutput('database-url', r.databaseUrl ?? '');
      await io.summary(snapshotSummary(r, request.pit));
      return;
    }
    case 'restore-snapshot':
    case 'finalize-restore': {
      const r =
        request.mode === 'restore-snapshot'
          ? await restoreNeonSnapshot({ projectId, ...request }, deps)
          : await finalizeNeonRestore({ projectId, ...request }, deps);
      setBranchOutputs(io, r.branch, request.mode === 'restore-snapshot');
      io.setOutput('snapshot-id', r.snapshot.id);
      io.setOutput('finalized', String(r.finalized));
      io.setOutput('preserved-branch-id', r.finalized ? (r.target?.id ?? '') : '');
      await io.summary(restoreSnapshotSummary(r, request.mode));
      return;
    }
    case 'schedule': {
      const r = await applyNeonSchedule(
        { projectId, branch: request.branch, wanted: request.schedule, dryRun: request.dryRun },
        deps,
      );
      io.setOutput('branch-id', r.branch.id);
      io.setOutput('branch-name', r.branch.name);
      io.setOutput('schedule-changed', String(r.diff.changed));
      await io.summary(scheduleSummary(r, request.dryRun));
      return;
    }
  }
}

function setBranchOutputs(io: RunIO, b: Branch, created: boolean): void {
  io.setOutput('branch-id', b.id);
  io.setOutput('branch-name', b.name);
  io.setOutput('created', String(created));
  io.setOutput('parent-lsn', b.parent_lsn ?? '');
  io.setOutput('parent-timestamp', b.parent_timestamp ?? '');
  io.setOutput('expires-at', b.expires_at ?? '');
}
