import * as core from '@actions/core';
import { Cancellation, cancelSummary, handleSignals, type CancelReport } from './cancel.js';
import { errorMessage, isReported } from './errors.js';
import { withHeartbeat } from './heartbeat.js';
import { InputReader, type InputSource } from './inputs.js';
import { ConsoleLogger, type Logger } from './log.js';
import { actionSpec } from '../spec.js';
import { runContext, type RunContext } from './run-context.js';

/**
 * What an operation needs from its host, injected so that the same handler runs as an action (the runner's
 * toolkit) and as the CLI (a terminal).
 */
export interface RunIO {
  source: InputSource;
  log: Logger;
  setOutput(name: string, value: string | number | boolean): void;
  summary(markdown: string): Promise<void>;
  /** CLI only: standard input, for commands that read data (plan-retention). */
  stdin?: () => Promise<string>;
  /** CLI only: a document to print on stdout instead of the outputs (list, plan-retention). */
  result?: (value: unknown) => void;
  /** The run's cancellation: stages register their children and undos with it (see cancel.ts). */
  cancel: Cancellation;
  /** The workflow run this process belongs to (read once from the runner's variables; outside Actions, mostly empty). */
  run: RunContext;
}

export type Handler = (inputs: InputReader, io: RunIO) => Promise<void>;

class ActionsLogger implements Logger {
  info(m: string) {
    core.info(m);
  }
  warn(m: string) {
    core.warning(m);
  }
  error(m: string) {
    core.error(m);
  }
  debug(m: string) {
    core.debug(m);
  }
  secret(v: string) {
    if (v) core.setSecret(v);
  }
  group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    return core.group(title, fn);
  }
}

export function actionsIO(): RunIO {
  const run = runContext();
  return {
    source: (name) => core.getInput(name),
    log: new ActionsLogger(),
    setOutput: (name, value) => core.setOutput(name, String(value)),
    summary: async (md) => {
      if (run.stepSummaryPath) await core.summary.addRaw(md, true).write();
    },
    cancel: new Cancellation(),
    run,
  };
}

/** Runs an action's handler; a user mistake or a fault fails the step with its message only, a bug with its stack. */
export async function runAction(name: string, handler: Handler, io: RunIO = actionsIO()): Promise<void> {
  handleSignals(io.cancel, async (r) => {
    core.setFailed(`${name} was cancelled (${r.reason}); ${cancelledLine(r)}`);
    await io.summary(cancelSummary(name, r)).catch(() => undefined);
  });
  try {
    const spec = actionSpec(name);
    await withHeartbeat(spec, handler)(new InputReader(spec, io.source, io.log), io);
  } catch (e) {
    // The work failed because it was cancelled (its children were stopped): the cancel reports and exits.
    await io.cancel.exitIfCancelled();
    if (isReported(e)) core.setFailed(errorMessage(e));
    else {
      core.error((e as Error)?.stack ?? String(e));
      core.setFailed(`Unexpected error (a bug; please report it): ${errorMessage(e)}`);
    }
  }
}

/** One line on what a cancel cleaned, for the log. */
export function cancelledLine(r: CancelReport): string {
  const parts = [r.cleaned.length ? `cleaned up: ${r.cleaned.join('; ')}` : 'nothing needed cleaning up'];
  if (r.failed.length) parts.push(`NOT cleaned up: ${r.failed.join('; ')}`);
  return [...r.notes, ...parts].join('; ');
}

export function consoleIO(
  values: Map<string, string>,
  log = new ConsoleLogger(),
): RunIO & { outputs: Record<string, string>; printed: { value?: unknown } } {
  const outputs: Record<string, string> = {};
  const printed: { value?: unknown } = {};
  return {
    source: (name) => values.get(name) ?? '',
    log,
    outputs,
    printed,
    setOutput: (name, value) => {
      outputs[name] = String(value);
    },
    summary: async () => undefined,
    stdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    result: (value) => {
      printed.value = value;
    },
    cancel: new Cancellation(),
    // The CLI run as a workflow step has the runner's variables too (its manifests name the run).
    run: runContext(),
  };
}
