/**
 * What a service (S3, Neon, GitHub) answered, kept on the errors its adapter throws, so that callers classify
 * from the status and code, never from message text.
 */
export interface ServiceReply {
  service: 's3' | 'neon' | 'github';
  /** The HTTP status, when a reply arrived. */
  status?: number;
  /** The service's error code (S3: `SlowDown`, `AccessDenied`, ...) or the network error code (`ECONNRESET`). */
  code?: string;
  /** How many requests were sent, retries included. */
  attempts?: number;
  /**
   * The service's own error text (Neon's `GeneralError.message`), apart from the message we compose around it
   * (which holds names the user chose), for the conditions a service signals in no other field.
   */
  message?: string;
}

/**
 * The one error type for user mistakes: bad input, missing permission, wrong key or name.
 * Its message is shown without a stack trace; it names the input or resource, what was wrong and how to fix it.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
  readonly reply?: ServiceReply;
  constructor(message: string, options?: { cause?: unknown; reply?: ServiceReply }) {
    super(message, options);
    this.reply = options?.reply;
  }
}

/**
 * The one error type for faults outside our control: a service that cannot be reached, throttles or fails after
 * every retry. Shown without a stack trace; the message says what failed, how often it was tried and whether
 * re-running is safe.
 */
export class FaultError extends Error {
  override readonly name: string = 'FaultError';
  readonly reply?: ServiceReply;
  constructor(message: string, options?: { cause?: unknown; reply?: ServiceReply }) {
    super(message, options);
    this.reply = options?.reply;
  }
}

/** A UserError about one input: "Input `s3-bucket`: <what>. <fix>" */
export function inputError(input: string, problem: string, fix: string): UserError {
  return new UserError(`Input \`${input}\`: ${problem}. ${fix}`);
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

export function isFault(e: unknown): e is FaultError {
  return e instanceof FaultError;
}

/** Errors whose message is the whole story (user mistakes and faults): printed without a stack. Anything else is a bug. */
export function isReported(e: unknown): e is UserError | FaultError {
  return e instanceof UserError || e instanceof FaultError;
}

/** The service reply kept on an adapter's error, if any. */
export function replyOf(e: unknown): ServiceReply | undefined {
  return e instanceof UserError || e instanceof FaultError ? e.reply : undefined;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
