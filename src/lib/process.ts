import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Cancellation } from './cancel.js';

/**
 * Starts a program without a shell. With a cancellation, in its own process group and tracked, so that a cancel
 * stops it and everything it started (pg_restore's parallel workers) and nothing outlives the step.
 */
export function spawnChild(cmd: string, args: string[], options: SpawnOptions, cancel?: Cancellation): ChildProcess {
  const child = spawn(cmd, args, { ...options, shell: false, detached: cancel !== undefined });
  if (cancel) cancel.track(child);
  return child;
}

/** Runs a program without a shell and collects its output. */
export async function run(
  cmd: string,
  args: string[],
  options: SpawnOptions = {},
  cancel?: Cancellation,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] }, cancel);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * The processes port: how the core starts programs (pg_dump, zstd, pg_restore, pg_dumpall). The host's is
 * `localProcesses`; a test can hand the core its own (a pg_restore that dies halfway) without a fake on the PATH.
 */
export interface Processes {
  spawn: typeof spawnChild;
  run: typeof run;
}

export const localProcesses: Processes = { spawn: spawnChild, run };

/** Keeps the last lines of a child's stderr, for error messages, and resolves when the child has exited. */
export class ChildWatch {
  private tail: string[] = [];
  private partial = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly keepLines = 20,
  ) {
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (this.partial + d.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      this.tail.push(...lines.filter((l) => l.trim() !== ''));
      if (this.tail.length > this.keepLines) this.tail = this.tail.slice(-this.keepLines);
    });
    this.exited = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
    // An unobserved rejection (spawn ENOENT) must not crash the process before someone awaits it.
    this.exited.catch(() => undefined);
  }

  stderrTail(): string {
    return [...this.tail, this.partial].filter((l) => l.trim() !== '').join('\n');
  }

  /** Rejects with the exit status and the stderr tail unless the child exited 0. */
  async succeeded(): Promise<void> {
    const { code, signal } = await this.exited;
    if (code === 0) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderrTail();
    throw new ChildFailure(this.name, `${this.name} ${how}${tail ? `:\n${tail}` : ''}`, tail);
  }
}

/** A child process that failed: which program, and the last lines of its stderr (its own account of why). */
export class ChildFailure extends Error {
  override readonly name = 'ChildFailure';
  constructor(
    readonly program: string,
    message: string,
    readonly stderr = '',
  ) {
    super(message);
  }
}

/**
 * A child that reports a full disk: a program writing a file itself (zstd -d) says so only on stderr, as the C
 * library's strerror(ENOSPC) ("No space left on device"); its exit status is a generic 1, so the text is the
 * only signal.
 */
export function childOutOfSpace(e: unknown): boolean {
  return e instanceof ChildFailure && /No space left on device/i.test(e.stderr);
}
