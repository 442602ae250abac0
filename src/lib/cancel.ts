import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { errorMessage } from './errors.js';

/**
 * The one cancellation mechanism. GitHub's runner cancels a step (the Cancel button, `timeout-minutes`) with SIGINT
 * to node, SIGTERM 7.5 s later and a kill of the process tree 2.5 s after that; a terminal sends SIGINT on Ctrl-C.
 * Stages register what undoes their work (`onCancel`) and the children they start (`track`); a signal aborts
 * `signal`, stops every tracked child's process group, lets a running `atomically` section finish, then runs the
 * undos newest first, all within `budgetMs`, so that the step can say what it cleaned and exit well inside 5 s.
 */
export class Cancellation {
  private readonly controller = new AbortController();
  private readonly undos: Undo[] = [];
  private readonly children = new Set<ChildProcess>();
  private critical: Promise<unknown> | undefined;
  private cancelling: Promise<CancelReport> | undefined;
  /** Notes the cancel report adds, e.g. "the swap completed before the cancel". */
  readonly notes: string[] = [];

  constructor(private readonly budgetMs = 4000) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cancelled(): boolean {
    return this.controller.signal.aborted;
  }

  /** Throws CancelledError once a cancel has begun: call it before a step that must not start after one. */
  throwIfCancelled(): void {
    if (this.cancelled) throw new CancelledError(String(this.controller.signal.reason ?? 'cancelled'));
  }

  /**
   * Registers what undoes a stage's work. `done` describes the state once it has run ("dropped database x").
   * The stage runs it itself on its own failure (`run`, once, whoever calls first) or drops it once the work is
   * handed over (`dismiss`).
   */
  onCancel(done: string, fn: () => Promise<void>): Undo {
    const undo = new Undo(done, fn, (u) => {
      const i = this.undos.indexOf(u);
      if (i >= 0) this.undos.splice(i, 1);
    });
    this.undos.push(undo);
    return undo;
  }

  /**
   * Tracks a child started with `detached: true` (its own process group), so that a cancel stops it and every
   * process it started (pg_restore's parallel workers) with it.
   */
  track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    // A child started after the cancel began is stopped at once.
    if (this.cancelled) void stopGroup(child, 1000);
  }

  /** Runs `fn` to its end even when a cancel arrives meanwhile; the cancel waits for it before undoing anything. */
  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    this.throwIfCancelled();
    const p = fn();
    this.critical = p.catch(() => undefined);
    try {
      return await p;
    } finally {
      this.critical = undefined;
    }
  }

  /**
   * For the top level: when the work failed because a cancel stopped it, wait for the cancel's report and exit
   * (done by `handleSignals`) instead of reporting that failure.
   */
  async exitIfCancelled(): Promise<void> {
    if (!this.cancelled) return;
    await this.cancelling;
    await new Promise<never>(() => undefined);
  }

  /** Cancels once: aborts, stops the children, waits for an atomic section, runs the undos (newest first). */
  cancel(reason: string): Promise<CancelReport> {
    this.cancelling ??= this.doCancel(reason);
    return this.cancelling;
  }

  private async doCancel(reason: string): Promise<CancelReport> {
    const deadline = Date.now() + this.budgetMs;
    this.controller.abort(reason);
    const report: CancelReport = { reason, cleaned: [], failed: [], notes: this.notes };
    const running = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all([
      ...running.map(async (c) => {
        await stopGroup(c, Math.min(1500, deadline - Date.now()));
        report.cleaned.push(`stopped ${path.basename(c.spawnfile)} (pid ${c.pid}) and its process group`);
      }),
      this.critical ? withTimeout(this.critical, Math.max(0, deadline - Date.now() - 500)) : undefined,
    ]);
    for (const undo of [...this.undos].reverse()) {
      const left = deadline - Date.now();
      try {
        if (left <= 0) throw new Error('no time left before the runner kills the step');
        await withTimeout(undo.run(), left);
        report.cleaned.push(undo.done);
      } catch (e) {
        report.failed.push(`${undo.done}: not done (${errorMessage(e)})`);
      }
    }
    return report;
  }
}

export interface CancelReport {
  reason: string;
  cleaned: string[];
  failed: string[];
  notes: string[];
}

export class Undo {
  private ran: Promise<void> | undefined;
  constructor(
    readonly done: string,
    private readonly fn: () => Promise<void>,
    private readonly remove: (u: Undo) => void,
  ) {}

  /** Runs the undo once; a second caller waits for the first. */
  run(): Promise<void> {
    this.ran ??= this.fn().finally(() => this.remove(this));
    return this.ran;
  }

  /** The work was handed over (the swap made the restored database the target): nothing to undo any more. */
  dismiss(): void {
    this.remove(this);
  }
}

/** Raised in the work when a cancel began; the cancel itself reports and exits. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
}

/** SIGTERM to the child's process group, SIGKILL after `graceMs`; resolves when the leader has exited. */
async function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Not a group leader (not started detached) or gone: signal the child alone.
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  };
  signalGroup('SIGTERM');
  const timer = setTimeout(() => signalGroup('SIGKILL'), Math.max(0, graceMs));
  await exited;
  clearTimeout(timer);
  // The leader is gone; workers it left in the group go too.
  signalGroup('SIGKILL');
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${(ms / 1000).toFixed(1)} s`)), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Installs the SIGINT/SIGTERM handlers of a run: the first signal cancels and then calls `report` (which writes the
 * summary) and exits non-zero; later signals are ignored while that happens. A watchdog exits after `exitMs` whatever
 * happens, so that a step never outlives the 5 s it is allowed.
 */
export function handleSignals(
  cancel: Cancellation,
  report: (r: CancelReport) => Promise<void> | void,
  exitMs = 4800,
): () => void {
  let exiting = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    const code = sig === 'SIGINT' ? 130 : 143;
    // Not unref'd: it also keeps the process alive until the report is written.
    setTimeout(() => process.exit(code), exitMs);
    void cancel
      .cancel(`received ${sig}`)
      .then(async (r) => {
        await report(r);
      })
      .catch(() => undefined)
      .finally(() => process.exit(code));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export function cancelSummary(what: string, r: CancelReport): string {
  const lines = [
    `## ⏹ ${what} cancelled`,
    '',
    `The step ${r.reason} (a cancelled run, \`timeout-minutes\` running out, or Ctrl-C) and stopped.`,
    '',
  ];
  for (const n of r.notes) lines.push(n, '');
  if (r.cleaned.length) lines.push('Cleaned up:', '', ...r.cleaned.map((c) => `- ${c}`), '');
  else lines.push('Nothing needed cleaning up.', '');
  if (r.failed.length) lines.push('Could not clean up:', '', ...r.failed.map((c) => `- ${c}`), '');
  return lines.join('\n');
}
