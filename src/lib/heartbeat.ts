import { errorMessage, inputError } from './errors.js';
import type { InputReader } from './inputs.js';
import type { Logger } from './log.js';
import type { RunContext } from './run-context.js';
import type { Handler, RunIO } from './runtime.js';
import type { ActionSpec } from '../spec.js';

/**
 * Heartbeat monitoring (a dead man's switch): `<url>/start` when the work starts, `<url>` on success,
 * `<url>/fail` on failure, each a POST with a short plain-text body. The Healthchecks.io convention, which
 * Better Stack accepts for success and `/fail`; Cronitor's telemetry URLs (`cronitor.link`) take the state as
 * `?state=run|complete|fail` instead, which is used for them. A monitor that stops hearing success pings alerts,
 * which is the point: it notices a backup that stopped running at all.
 */
export type HeartbeatSignal = 'start' | 'success' | 'fail';

/** Short: a monitoring service that is slow or down must not hold up a backup. */
const TIMEOUT_MS = 10_000;

/** The URL to request for a signal: path suffixes (Healthchecks.io, Better Stack) or Cronitor's `state` query. */
export function heartbeatUrl(base: string, signal: HeartbeatSignal): string {
  const url = new URL(base);
  if (/(^|\.)cronitor\.link$/i.test(url.hostname)) {
    url.searchParams.set('state', signal === 'start' ? 'run' : signal === 'success' ? 'complete' : 'fail');
    return url.toString();
  }
  if (signal === 'success') return base;
  url.pathname = url.pathname.replace(/\/+$/, '') + (signal === 'start' ? '/start' : '/fail');
  return url.toString();
}

/** Reads and masks `heartbeat-url`; an unusable URL is an input error before any work is done. */
export function readHeartbeatUrl(inputs: InputReader): string | undefined {
  const value = inputs.optional('heartbeat-url');
  if (!value) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash) {
    throw inputError(
      'heartbeat-url',
      'is not an http(s) ping URL without a query',
      'Paste the ping URL of the check, e.g. `https://hc-ping.com/<uuid>`, `https://uptime.betterstack.com/api/v1/heartbeat/<token>` or `https://cronitor.link/p/<key>/<monitor>`.',
    );
  }
  return value;
}

/** Sends one ping; never throws: a failed heartbeat is a warning, never a failed backup. */
export async function ping(
  base: string,
  signal: HeartbeatSignal,
  body: string,
  log: Logger,
  timeoutMs = Number(process.env.PBA_HEARTBEAT_TIMEOUT_MS) || TIMEOUT_MS,
): Promise<boolean> {
  // Our own deadline: whether it fired is read from the signal, not from the error's name or text.
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(heartbeatUrl(base, signal), {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: body.slice(0, 10_000),
      signal: deadline,
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      log.warn(`Heartbeat "${signal}" ping answered HTTP ${res.status}; the work itself is not affected.`);
      return false;
    }
    return true;
  } catch (e) {
    const cause = deadline.aborted ? `no answer within ${timeoutMs / 1000} s` : errorMessage(e);
    // The URL is masked, but the message of a fetch error need not contain it; say what failed without it.
    log.warn(`Heartbeat "${signal}" ping failed (${cause}); the work itself is not affected.`);
    return false;
  }
}

/** The plain-text body: what ran, the result, and where to read more. */
export function heartbeatBody(action: string, signal: HeartbeatSignal, detail: string, run: RunContext): string {
  const what = run.repository ? `${action} in ${run.repository}` : action;
  const result = signal === 'start' ? 'started' : signal === 'success' ? 'succeeded' : 'FAILED';
  return (
    [
      `${what} ${result}`,
      ...(detail ? [detail] : []),
      run.runUrl ? `run: ${run.runUrl}` : 'run: outside GitHub Actions',
    ].join('\n') + '\n'
  );
}

/**
 * Wraps the handler of an action that declares `heartbeat-url` (others are returned as they are): start, then
 * success or fail with the error. The success body lists the outputs (none of these actions has a secret one).
 */
export function withHeartbeat(spec: ActionSpec, handler: Handler): Handler {
  if (!spec.inputs['heartbeat-url']) return handler;
  const action = spec.name;
  return async (inputs, io) => {
    const url = readHeartbeatUrl(inputs);
    if (!url) return handler(inputs, io);
    await ping(url, 'start', heartbeatBody(action, 'start', '', io.run), io.log);
    const outputs: string[] = [];
    const recording: RunIO = {
      ...io,
      setOutput: (name, value) => {
        outputs.push(`${name}: ${String(value)}`);
        io.setOutput(name, value);
      },
    };
    try {
      await handler(inputs, recording);
    } catch (e) {
      await ping(url, 'fail', heartbeatBody(action, 'fail', errorMessage(e), io.run), io.log);
      throw e;
    }
    await ping(url, 'success', heartbeatBody(action, 'success', outputs.join('\n'), io.run), io.log);
  };
}
