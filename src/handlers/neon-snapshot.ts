import { inputError } from '../lib/errors.js';
import type { InputReader } from '../lib/inputs.js';
import { NeonApi } from '../lib/neon.js';
import { maskConnectionUrl } from '../lib/pg-url.js';
import type { RunIO } from '../lib/runtime.js';
import { LSN_PATTERN } from '../lib/wal-lsn.js';
import { NEON_API_HOST } from '../spec.js';
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

export async function neonSnapshotAction(inputs: InputReader, io: RunIO): Promise<void> {
  const mode = inputs.oneOf('mode', ['snapshot', 'restore'] as const);
  const { neon, projectId } = readNeon(inputs, io, inputs.seconds('timeout'));
  const pit = readPointInTime(inputs);
  if (mode === 'restore') {
    const branch = inputs.required('branch');
    const r = await neonRestore(
      {
        projectId,
        branch,
        sourceBranch: inputs.optional('source-branch'),
        preserveUnderName: inputs.optional('preserve-under-name'),
        confirm: inputs.optional('confirm'),
        ...pit,
      },
      { neon, log: io.log },
    );
    io.setOutput('branch-id', r.branch.id);
    io.setOutput('branch-name', r.branch.name);
    io.setOutput('created', 'false');
    io.setOutput('parent-lsn', r.branch.parent_lsn ?? '');
    io.setOutput('parent-timestamp', r.branch.parent_timestamp ?? '');
    io.setOutput('expires-at', r.branch.expires_at ?? '');
    io.setOutput('preserved-branch-id', r.preserved?.id ?? '');
    await io.summary(restoreSummary(r, pit));
    return;
  }
  const expiresIn = inputs.durationSeconds('expires-in');
  const expiresAtInput = rfc3339('expires-at', inputs.optional('expires-at'));
  if (expiresIn !== undefined && expiresAtInput)
    throw inputError('expires-at', 'is set together with `expires-in`', 'Give one of them.');
  if (expiresIn !== undefined && (expiresIn <= 0 || expiresIn > MAX_EXPIRY_SECONDS)) {
    throw inputError(
      'expires-in',
      `"${inputs.string('expires-in')}" is not between 1 second and 30 days`,
      'Neon expires branches at most 30 days ahead; use e.g. `7d`.',
    );
  }
  const now = Date.now();
  if (
    expiresAtInput &&
    (expiresAtInput.getTime() <= now || expiresAtInput.getTime() > now + MAX_EXPIRY_SECONDS * 1000)
  ) {
    throw inputError(
      'expires-at',
      `${expiresAtInput.toISOString()} is not in the next 30 days`,
      'Neon expires branches at most 30 days ahead.',
    );
  }
  const expiresAt =
    expiresAtInput ??
    (expiresIn !== undefined ? new Date(Math.ceil((now + expiresIn * 1000) / 1000) * 1000) : undefined);
  const createEndpoint = inputs.bool('create-endpoint');
  const r = await neonSnapshot(
    {
      projectId,
      branch: inputs.optional('branch'),
      name: inputs.optional('name'),
      expiresAt,
      createEndpoint,
      database: inputs.string('database'),
      role: inputs.string('role'),
      ...pit,
    },
    { neon, log: io.log, cancel: io.cancel },
  );
  if (r.databaseUrl) maskConnectionUrl(r.databaseUrl, io.log);
  io.setOutput('branch-id', r.branch.id);
  io.setOutput('branch-name', r.branch.name);
  io.setOutput('created', String(r.created));
  io.setOutput('parent-lsn', r.branch.parent_lsn ?? '');
  io.setOutput('parent-timestamp', r.branch.parent_timestamp ?? '');
  io.setOutput('expires-at', r.branch.expires_at ?? '');
  io.setOutput('database-url', r.databaseUrl ?? '');
  await io.summary(snapshotSummary(r, pit));
}
