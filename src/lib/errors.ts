/**
 * The one error type for user mistakes: bad input, missing permission, wrong key, unreachable service.
 * Its message is shown without a stack trace; it names the input or resource, what was wrong and how to fix it.
 * Anything that is not a UserError is a bug and keeps its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A UserError about one input: "Input `s3-bucket`: <what>. <fix>" */
export function inputError(input: string, problem: string, fix: string): UserError {
  return new UserError(`Input \`${input}\`: ${problem}. ${fix}`);
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
