import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDurationSeconds } from '../lib/duration.js';
import { inputError, isUserError, UserError } from '../lib/errors.js';
import { InputReader, splitList } from '../lib/inputs.js';
import { githubContext } from '../lib/manifest.js';
import type { RunIO } from '../lib/runtime.js';
import { ObjectStore } from '../lib/s3.js';
import { readS3Options } from './inputs/s3.js';
import { actionSpec } from '../spec.js';
import type { Expectation } from '../core/evidence.js';
import { policyIsEmpty } from '../core/retention.js';
import { runReport } from '../core/report.js';
import { readPolicy, readTimeZone } from './inputs/retention.js';

const EXPECT_FIX =
  'Use the keep-* vocabulary of prune-retention plus `max-age`, e.g. `keep-daily: 30, keep-monthly: 12, max-age: 26h`.';

/**
 * `expect`: `keep-daily: 30, keep-monthly: 12, max-age: 26h` (comma- or newline-separated). The keep-* values are
 * read by prune-retention's own parser, so both accept and refuse exactly the same things.
 */
export function parseExpect(text: string, io: RunIO): Expectation | undefined {
  if (!text.trim()) return undefined;
  const values = new Map<string, string>();
  let maxAgeSeconds: number | undefined;
  for (const item of splitList(text)) {
    const m = /^([a-z-]+)\s*[:=]\s*(.+)$/.exec(item);
    if (!m) throw inputError('expect', `"${item}" is not \`name: value\``, EXPECT_FIX);
    const [, name, value] = m as unknown as [string, string, string];
    if (name === 'max-age') maxAgeSeconds = parseDurationSeconds('expect', value);
    else if (name === 'keep-within')
      throw inputError(
        'expect',
        '`keep-within` cannot be checked from what the bucket holds',
        'Declare counts of periods instead (e.g. `keep-daily: 90`).',
      );
    else if (!/^keep-(last|hourly|daily|weekly|monthly|yearly)$/.test(name))
      throw inputError('expect', `\`${name}\` is not a retention rule`, EXPECT_FIX);
    else values.set(name, value.trim());
  }
  const prune = new InputReader(actionSpec('prune-retention'), (n) => values.get(n) ?? '', io.log);
  let policy;
  try {
    policy = readPolicy(prune);
  } catch (e) {
    if (isUserError(e)) throw new UserError(`Input \`expect\`: ${e.message.replace(/^Input /, 'rule ')}`);
    throw e;
  }
  if (policyIsEmpty(policy) && maxAgeSeconds === undefined) throw inputError('expect', 'declares nothing', EXPECT_FIX);
  return { policy, maxAgeSeconds, text: text.trim() };
}

export async function backupReport(inputs: InputReader, io: RunIO): Promise<void> {
  const s3 = readS3Options(inputs);
  const databases = inputs.list('databases');
  if (databases.length === 0)
    throw inputError('databases', 'is empty', 'Name the backup streams, e.g. `app` or `app, billing`.');
  for (const d of databases)
    if (!/^[^/\s][^/]*$/.test(d) || d === '.' || d === '..')
      throw inputError(
        'databases',
        `"${d}" cannot be a key segment`,
        'Use the stream names the backups were written with.',
      );
  const sinceText = inputs.string('since');
  const sinceSeconds = parseDurationSeconds('since', sinceText);
  if (sinceSeconds <= 0) throw inputError('since', 'is zero', 'Give a period such as `90d`.');
  const expect = parseExpect(inputs.string('expect'), io);
  const rto = inputs.durationSeconds('rto-target');
  const rpo = inputs.durationSeconds('rpo-target');
  const timeZone = readTimeZone(inputs);
  const outDir = process.env.RUNNER_TEMP || mkdtempSync(path.join(os.tmpdir(), 'pba-report-'));
  const r = await runReport(
    {
      prefix: s3.prefix,
      databases,
      sinceText,
      sinceSeconds,
      expect,
      targets: { rtoSeconds: rto, rpoSeconds: rpo },
      timeZone,
      outDir,
    },
    { store: ObjectStore.fromOptions(s3), log: io.log, github: githubContext(io.run) },
  );
  io.setOutput('html-path', r.htmlPath);
  io.setOutput('json-path', r.jsonPath);
  io.setOutput('markdown-path', r.markdownPath);
  io.setOutput('compliant', String(r.report.compliant));
  await io.summary(readFileSync(r.markdownPath, 'utf8'));
}
