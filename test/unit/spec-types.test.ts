// Input names are typed from src/spec.ts: reading an input no action declares fails `npm run typecheck`
// (the `@ts-expect-error` lines below fail tsc if the type ever stops catching them).
import { InputReader } from '../../src/lib/inputs.js';
import { MemoryLogger } from '../../src/lib/log.js';
import { actionSpec, ACTIONS, type InputName } from '../../src/spec.js';

test('every declared input is an InputName, and a misspelt one is not', () => {
  const declared: InputName[] = ['s3-bucket', 'keep-daily', 'restore-strategy', 'neon-api-key', 'rto-target'];
  // @ts-expect-error a name no action declares
  const typo: InputName = 's3-buckett';
  const all = new Set(ACTIONS.flatMap((a) => Object.keys(a.inputs)));
  for (const name of declared) expect(all.has(name)).toBe(true);
  expect(all.has(typo)).toBe(false);
});

test('a reader refuses at run time an input its own action does not declare (declared by another action)', () => {
  const reader = new InputReader(actionSpec('prune-retention'), () => '', new MemoryLogger());
  expect(() => reader.string('database-url')).toThrow(
    /input database-url is not declared in the spec of prune-retention/,
  );
  // @ts-expect-error not an input of any action
  expect(() => reader.string('no-such-input')).toThrow(/not declared/);
});
