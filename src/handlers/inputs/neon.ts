/** The Neon inputs every Neon-facing action shares: API access, and a point in time. */
import { inputError } from '../../lib/errors.js';
import type { InputReader } from '../../lib/inputs.js';
import { NeonApi } from '../../lib/neon.js';
import type { RunIO } from '../../lib/runtime.js';
import { LSN_PATTERN } from '../../lib/wal-lsn.js';
import { NEON_API_HOST } from '../../spec.js';
import type { PointInTime } from '../../core/neon-snapshot.js';

const PROJECT_ID = /^[a-z0-9-]{1,60}$/;

export interface NeonAccess {
  apiKey: string;
  projectId: string;
  apiHost: string;
}

/** The Neon API inputs of neon-snapshot, prune-retention and verify-restore, checked; no call is made. */
export function readNeonAccess(inputs: InputReader): NeonAccess {
  const apiKey = inputs.required('neon-api-key');
  const projectId = inputs.required('neon-project-id');
  if (!PROJECT_ID.test(projectId))
    throw inputError(
      'neon-project-id',
      `"${projectId}" is not a Neon project id`,
      'Copy the id from the Neon console (Settings > General), e.g. `late-frost-12345`.',
    );
  const apiHost = inputs.string('neon-api-host');
  if (!/^https?:\/\/[^\s]+$/.test(apiHost))
    throw inputError('neon-api-host', `"${apiHost}" is not an http(s) URL`, `Leave it empty for \`${NEON_API_HOST}\`.`);
  return { apiKey, projectId, apiHost };
}

/** The Neon API adapter for `access`; `timeoutSeconds` bounds waiting and retrying. */
export function neonApi(access: NeonAccess, io: RunIO, timeoutSeconds: number): NeonApi {
  return new NeonApi({ apiKey: access.apiKey, apiHost: access.apiHost, timeoutSeconds }, io.log);
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
  if (lsn && !LSN_PATTERN.test(lsn))
    throw inputError('lsn', `"${lsn}" is not an LSN`, 'Use the form `0/1F2A3B8` (as `pg_current_wal_lsn()` prints).');
  return { timestamp, lsn };
}
