/**
 * The one retry helper: exponential backoff with full jitter, bounded by attempts and a deadline, honouring a
 * server's Retry-After. `classify` says whether an error may be retried and how long the server asked to wait.
 */
export interface RetryOptions {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Absolute time (ms since epoch) after which no retry starts. */
  deadline?: number;
  classify(e: unknown): { retry: boolean; retryAfterMs?: number };
  onRetry?(e: unknown, attempt: number, delayMs: number): void;
  sleep?(ms: number): Promise<void>;
  random?(): number;
}

export async function withRetry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = o.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const c = o.classify(e);
      if (!c.retry || attempt >= o.attempts) throw e;
      const backoff = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1)) * random();
      const delay = Math.max(c.retryAfterMs ?? 0, backoff);
      if (o.deadline !== undefined && Date.now() + delay > o.deadline) throw e;
      o.onRetry?.(e, attempt, delay);
      await sleep(delay);
    }
  }
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
