import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

/** A process as /proc shows it; `start` (clock ticks since boot) tells a reused pid apart. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  start: string;
}

function readStat(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may hold spaces; the fields after the last ')' are fixed.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    if (rest[0] === 'Z') return undefined; // a zombie is dead, only not yet reaped
    return { pid, ppid: Number(rest[1]), comm, start: rest[19]! };
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root`, found by parent pid as the runner does. */
export function descendants(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((p): p is ProcInfo => p !== undefined);
  const out: ProcInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}

export function isAlive(p: ProcInfo): boolean {
  const now = readStat(p.pid);
  return now !== undefined && now.start === p.start;
}

/**
 * Records every process a run starts (polled), so that after it exits the test can tell whether any of them
 * outlived it: an orphan is re-parented and no longer a descendant.
 */
export class TreeWatch {
  readonly seen = new Map<number, ProcInfo>();
  private timer: NodeJS.Timeout;
  /** `output` (the run's log so far) goes into a timeout's message, since a run that never got there says why. */
  constructor(
    private readonly root: number,
    private readonly output?: () => string,
  ) {
    this.poll();
    this.timer = setInterval(() => this.poll(), 20);
  }
  poll(): void {
    // A child caught between fork and exec is still called `node`: its name is read again on every poll.
    for (const p of descendants(this.root)) this.seen.set(p.pid, p);
  }
  /** Resolves when a descendant whose command name matches appears. */
  async waitFor(comm: RegExp, timeoutMs = 60000): Promise<ProcInfo> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      const hit = [...this.seen.values()].find((p) => comm.test(p.comm) && isAlive(p));
      if (hit) return hit;
      if (Date.now() > until) {
        const seen = [...this.seen.values()].map((p) => `${p.comm}${isAlive(p) ? '' : ' (exited)'}`).join(', ');
        // The run is stopped so that it cannot reach the store during the tests after this one.
        killTree(this.root);
        throw new Error(
          `no live process matching ${comm} in ${timeoutMs} ms; seen: ${seen || 'none'}; the run's output:\n${this.output?.() ?? ''}`,
        );
      }
      await sleep(10);
    }
  }
  stop(): ProcInfo[] {
    clearInterval(this.timer);
    return [...this.seen.values()].filter(isAlive);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL to `root` and every descendant, as the runner kills a step's process tree. */
export function killTree(root: number): void {
  const procs = [...descendants(root), readStat(root)].filter((p): p is ProcInfo => p !== undefined);
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export interface CancelOutcome {
  /** The last signal the process needed: SIGINT when it exited on its own after it. */
  needed: 'SIGINT' | 'SIGTERM' | 'SIGKILL';
  /** From the SIGINT to the exit. */
  exitMs: number;
}

/**
 * Cancels a step exactly as GitHub's runner does: SIGINT to node, SIGTERM 7.5 s later, then SIGKILL of the whole
 * process tree 2.5 s after that. Resolves once node has exited.
 */
export async function runnerCancel(child: ChildProcess): Promise<CancelOutcome> {
  const t0 = Date.now();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  const within = (ms: number) => Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
  child.kill('SIGINT');
  if (await within(7500)) return { needed: 'SIGINT', exitMs: Date.now() - t0 };
  child.kill('SIGTERM');
  if (await within(2500)) return { needed: 'SIGTERM', exitMs: Date.now() - t0 };
  killTree(child.pid!);
  await exited;
  return { needed: 'SIGKILL', exitMs: Date.now() - t0 };
}

/**
 * An HTTP proxy in front of the S3 server that holds back the requests a test names (an UploadPart, the dump's
 * GET), so that a test can cancel a run at a known point of its transfer.
 */
export class HoldingProxy {
  private server: http.Server;
  private held: { res: http.ServerResponse }[] = [];
  private waiters: (() => void)[] = [];
  endpoint = '';
  hold: ((req: http.IncomingMessage) => boolean) | undefined;
  /** Every request held since the last reset, for a failing test's message. */
  readonly heldRequests: string[] = [];

  constructor(private readonly target: string) {
    const upstream = new URL(target);
    this.server = http.createServer((req, res) => {
      const forward = () => {
        const out = http.request(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        out.on('error', () => res.destroy());
        req.pipe(out);
      };
      if (this.hold?.(req)) {
        this.heldRequests.push(`${req.method} ${req.url}`);
        this.held.push({ res });
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      forward();
    });
  }

  private sockets = new Set<import('node:net').Socket>();

  async start(): Promise<void> {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  /** Resolves once a request matching `hold` is being held. */
  async waitForHeld(timeoutMs = 60000): Promise<void> {
    if (this.held.length) return;
    await Promise.race([
      new Promise<void>((resolve) => this.waiters.push(resolve)),
      sleep(timeoutMs).then(() => {
        throw new Error(`no request was held in ${timeoutMs} ms (proxy for ${this.target})`);
      }),
    ]);
  }

  /** Stops holding; held requests (their clients cancelled) are dropped, never forwarded half-read. */
  reset(): void {
    this.hold = undefined;
    this.heldRequests.length = 0;
    for (const h of this.held.splice(0)) h.res.destroy();
  }

  async stop(): Promise<void> {
    for (const h of this.held.splice(0)) h.res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
