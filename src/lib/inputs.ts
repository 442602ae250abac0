import { inputError } from './errors.js';
import { parseDurationSeconds } from './duration.js';
import { keyProblem, trimSlashes } from './keys.js';
import type { Logger } from './log.js';
import type { ActionSpec, InputName } from '../spec.js';

/** Anything that looks like an age identity, in any case: `AGE-SECRET-KEY-1` and Bech32 characters. */
const AGE_IDENTITY_ANYWHERE = /age-secret-key-1[0-9a-z]+/gi;

/** Where raw input values come from: the runner's INPUT_* variables, or the CLI's --options. '' when unset. */
export type InputSource = (name: string) => string;

/**
 * Typed reading of one action's inputs. Defaults come from the action's spec, so the CLI and the action agree;
 * every problem is a UserError that names the input and says how to fix it.
 */
export class InputReader {
  constructor(
    private readonly spec: ActionSpec,
    private readonly source: InputSource,
    private readonly log: Logger,
  ) {}

  /** The raw value, trimmed, with the spec's default applied; secrets are masked here, as they are read. */
  string(name: InputName): string {
    const input = this.spec.inputs[name];
    if (!input) throw new Error(`input ${name} is not declared in the spec of ${this.spec.name}`);
    const raw = this.source(name).trim();
    const value = raw === '' ? (input.default ?? '') : raw;
    if (input.secret && value) this.log.secret(value);
    // An age secret key pasted into any input (quoted, lower-case) is masked before anything can print it.
    for (const key of value.match(AGE_IDENTITY_ANYWHERE) ?? []) this.log.secret(key);
    return value;
  }

  required(name: InputName): string {
    const value = this.string(name);
    if (!value)
      throw inputError(name, 'is required but empty', `Set \`${name}\` in the step's \`with:\` (or pass --${name}).`);
    return value;
  }

  optional(name: InputName): string | undefined {
    return this.string(name) || undefined;
  }

  bool(name: InputName): boolean {
    const value = this.string(name).toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(value)) return true;
    if (['false', 'no', '0', 'off', ''].includes(value)) return false;
    throw inputError(name, `"${value}" is not a boolean`, 'Use `true` or `false`.');
  }

  oneOf<T extends string>(name: InputName, allowed: readonly T[]): T {
    const value = this.string(name);
    const found = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
    if (!found) {
      throw inputError(
        name,
        `"${value}" is not one of the allowed values`,
        `Use one of: ${allowed.map((a) => '`' + a + '`').join(', ')}.`,
      );
    }
    return found;
  }

  int(name: InputName, min: number, max: number): number | undefined {
    const value = this.string(name);
    if (value === '') return undefined;
    if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw inputError(
        name,
        `"${value}" is not a whole number from ${min} to ${max}`,
        `Set \`${name}\` to a whole number in that range.`,
      );
    }
    return Number(value);
  }

  durationSeconds(name: InputName): number | undefined {
    const value = this.string(name);
    return value === '' ? undefined : parseDurationSeconds(name, value);
  }

  /** A duration input whose default lives in the spec (the one source of defaults): never undefined. */
  seconds(name: InputName): number {
    const value = this.durationSeconds(name);
    // Only a spec without a default for this input gets here: a bug of ours, not a user mistake.
    if (value === undefined) throw new Error(`spec.ts: input ${name} needs a default to be read with seconds()`);
    return value;
  }

  /**
   * A value that becomes part of object keys: one segment (`database`), or with `path` a `/`-separated prefix
   * (`s3-prefix`, outer slashes dropped, may be empty). Refused by the one key validator, `keyProblem`.
   */
  keyPart(name: InputName, o: { path: boolean; value?: string }): string {
    const value = o.path ? trimSlashes(o.value ?? this.string(name)) : (o.value ?? this.string(name));
    if (o.path && value === '') return value;
    const problem = value === '' ? 'is empty' : keyProblem(value, { path: o.path, spaces: o.path });
    if (problem) {
      throw inputError(
        name,
        `${JSON.stringify(value)} ${problem}`,
        o.path
          ? 'Use a path such as `postgres-backups` or `backups/prod`: segments of letters, digits, `-`, `_` and `.`, no `..`.'
          : 'Use a name without `/` or spaces, such as `app` or `app-prod`.',
      );
    }
    return value;
  }

  /** Comma- or newline-separated list; blanks and `#` comments dropped. */
  list(name: InputName): string[] {
    return splitList(this.string(name));
  }
}

export function splitList(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((s) => s.replace(/#.*$/, '').trim())
    .filter((s) => s !== '');
}
