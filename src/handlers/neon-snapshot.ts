import { inputError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import { NeonApi, type Branch, type ScheduleItem } from '../lib/neon.js';
import { parseSchedule } from '../lib/neon-schedule.js';
import { maskConnectionUrl } from '../lib/pg-url.js';
import type { RunIO } from '../lib/runtime.js';
import { LSN_PATTERN } from '../lib/wal-lsn.js';
import { NEON_API_HOST, type InputName } from '../spec.js';
import {
  applyNeonSchedule,
  createNeonSnapshot,
  createSnapshotSummary,
  finalizeNeonRestore,
  restoreNeonSnapshot,
  restoreSnapshotSummary,
  scheduleSummary,
} from '../core/neon-snapshots.js';
import {
  MAX_EXPIRY_SECONDS,
  neonRestore,
  neonSnapshot,
  restoreSummary,
  snapshotSummary,
  type PointInTime,
} from '../core/neon-snapshot.js';

const PROJECT_ID = /^[a-z0-9-]{1,60}$/;
const LSN = LSN_PATTERN;

/** The Neon inputs shared by neon-snapshot and prune-retention; `timeoutSeconds` bounds waiting and retrying. */
export function readNeon(inputs: InputReader, io: RunIO, timeoutSeconds: number): { neon: NeonApi; projectId: string } {
  const apiKey = inputs.required('neon-api-key');
  const projectId = inputs.required('neon-project-id');
  if (!PROJECT_ID.test(projectId))
    throw inputError(
      'neon-project-id',
      `"${projectId}" is not a Neon project id`,
      'Copy the id from the Neon console (Settings > General), e.g. `late-frost-12345`.',
    );
  const host = inputs.string('neon-api-host');
  if (!/^https?:\/\/[^\s]+$/.test(host))
    throw inputError('neon-api-host', `"${host}" is not an http(s) URL`, `Leave it empty for \`${NEON_API_HOST}\`.`);
  return {
    neon: new NeonApi(
      {
        apiKey,
        apiHost: host,
        timeoutSeconds,
        // Environment knobs for tests against a local Neon server, where waiting a second per poll is waste.
        pollIntervalMs: Number(process.env.PBA_NEON_POLL_MS) || 1000,
        retryBaseMs: Number(process.env.PBA_NEON_RETRY_BASE_MS) || 500,
      },
      io.log,
    ),
    projectId,
  };
}

export function rfc3339(input: string, value: string | undefined): Date | undefined {
  if (!value) return undefined;
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw inputError(
      input,
      `"${value}" is not an RFC 3339 time`,
      'Use e.g. `2026-11-21T02:00:00Z` (with a Z or an offset).',
    );
  }
  return new Date(value);
}

export function readPointInTime(inputs: InputReader): PointInTime {
  const timestamp = rfc3339('timestamp', inputs.optional('timestamp'));
  const lsn = inputs.optional('lsn');
  if (timestamp && lsn)
    throw inputError('lsn', 'is set together with `timestamp`', 'Give one point in time: either `timestamp` or `lsn`.');
  if (lsn && !LSN.test(lsn))
    throw inputError('lsn', `"${lsn}" is not an LSN`, 'Use the form `0/1F2A3B8` (as `pg_current_wal_lsn()` prints).');
  return { timestamp, lsn };
}

type Mode = 'snapshot' | 'restore' | 'restore-snapshot' | 'finalize-restore' | 'schedule';

/** Inputs that only some modes read: set with another mode they would be silently ignored, so they are refused. */
const ONLY_IN: [InputName, Mode[]][] = [
  ['timestamp', ['snapshot', 'restore']],
  ['lsn', ['snapshot', 'restore']],
  ['snapshot', ['restore-snapshot']],
  ['schedule', ['schedule']],
  ['source-branch', ['restore']],
];

/** Every input of neon-snapshot read and checked before any API call, as one object per mode. */
export type NeonSnapshotRequest =
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
  | {
      mode: 'restore-snapshot';
      snapshot: string;
      targetBranch?: string;
      finalize: boolean;
      name?: string;
      preserveUnderName?: string;
      confirm?: string;
    }
  | { mode: 'finalize-restore'; branch: string; targetBranch?: string; preserveUnderName?: string; confirm: string }
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
  const request = readNeonSnapshotRequest(inputs);
  const { neon, projectId } = readNeon(inputs, io, inputs.seconds('timeout'));
  const deps = { neon, log: io.log, cancel: io.cancel };
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
