import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ActionRun {
  exitCode: number;
  outputs: Record<string, string>;
  summary: string;
  /** stdout and stderr together, as the runner shows them. */
  logs: string;
  /** The messages passed to ::error:: (core.setFailed). */
  errors: string[];
}

const runnerTemp = mkdtempSync(path.join(os.tmpdir(), 'runner-temp-'));

/** Every log the bundles printed in this test file, for the no-secrets-in-logs checks. */
export const collectedLogs: string[] = [];

interface ActionYml {
  inputs?: Record<string, { default?: string; required?: boolean }>;
}

/** Reads the key/value pairs the toolkit writes to GITHUB_OUTPUT (`name<<delimiter` ... `delimiter`). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (m) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]!);
      out[m[1]!] = value.join('\n');
    } else if (lines[i]!.includes('=')) {
      const [k, ...v] = lines[i]!.split('=');
      out[k!] = v.join('=');
    }
  }
  return out;
}

/** A bundle or CLI run in progress: its process, the output so far, and its end. */
export interface Started<T> {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves when `re` appears in the output; rejects when the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<T>;
}

function watchOutput(child: ChildProcess): Pick<Started<unknown>, 'output' | 'waitFor'> & { exited: Promise<number> } {
  let text = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of [...waiters]) if (w.re.test(text)) w.resolve();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return {
    exited,
    output: () => text,
    waitFor: (re, timeoutMs = 60000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(text)) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`${re} did not appear in ${timeoutMs} ms:\n${text}`)),
          timeoutMs,
        );
        const w = {
          re,
          resolve: () => {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(w), 1);
            resolve();
          },
        };
        waiters.push(w);
        void exited.then(() => {
          if (!waiters.includes(w)) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`the process exited before ${re} appeared:\n${text}`));
        });
      }),
  };
}

/**
 * Runs `node dist/<name>/index.js` as the runner does: action.yml defaults applied, INPUT_<NAME> with hyphens
 * kept, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, a GITHUB_* context.
 */
export async function runBundle(
  name: string,
  inputs: Record<string, string>,
  env: Record<string, string | undefined> = {},
): Promise<ActionRun> {
  return startBundle(name, inputs, env).done;
}

/** Starts a bundle as `runBundle` does, for tests that act while it runs (cancel it, watch its children). */
export function startBundle(
  name: string,
  inputs: Record<string, string>,
  env: Record<string, string | undefined> = {},
): Started<ActionRun> {
  const yml = parse(readFileSync(path.join(repoRoot, 'actions', name, 'action.yml'), 'utf8')) as ActionYml;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'action-run-'));
  const outputFile = path.join(dir, 'output');
  const summaryFile = path.join(dir, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('INPUT_')) childEnv[k] = v;
  delete childEnv.NODE_OPTIONS;
  Object.assign(childEnv, {
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_REPOSITORY: 'octo-org/app',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_WORKFLOW: 'Nightly backup',
    // Like the runner's, it outlives the step (plan files are read after the run).
    RUNNER_TEMP: runnerTemp,
  });
  for (const [k, spec] of Object.entries(yml.inputs ?? {})) {
    if (spec.default !== undefined) childEnv[`INPUT_${k.toUpperCase()}`] = String(spec.default);
  }
  for (const [k, v] of Object.entries(inputs)) childEnv[`INPUT_${k.toUpperCase()}`] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', name, 'index.js')], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watch = watchOutput(child);
  return {
    child,
    output: watch.output,
    waitFor: watch.waitFor,
    done: finishBundle(watch, outputFile, summaryFile, dir),
  };
}

async function finishBundle(
  watch: ReturnType<typeof watchOutput>,
  outputFile: string,
  summaryFile: string,
  dir: string,
): Promise<ActionRun> {
  const exitCode = await watch.exited;
  // The runner consumes ::add-mask:: commands and never shows them; what is left is what people would read.
  const logs = watch
    .output()
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
  const result: ActionRun = {
    exitCode,
    outputs: parseOutputFile(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    logs,
    errors: logs
      .split('\n')
      .filter((l) => l.startsWith('::error::'))
      .map((l) => l.slice('::error::'.length).replace(/%0A/g, '\n').replace(/%25/g, '%').replace(/%0D/g, '\r')),
  };
  // Outputs are not logs (the runner masks secret outputs such as database-url); logs and the summary are.
  collectedLogs.push(logs, result.summary);
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Runs the CLI bundle and returns exit code, stdout and stderr. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return startCli(args, env, stdin).done;
}

/** Starts the CLI bundle as `runCli` does, for tests that act while it runs. */
export function startCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  stdin?: string,
): Started<{ exitCode: number; stdout: string; stderr: string }> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  delete childEnv.NODE_OPTIONS;
  delete childEnv.GITHUB_ACTIONS;
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist/cli/index.js'), ...args], {
    env: childEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin ?? '');
  const watch = watchOutput(child);
  const done = watch.exited.then((exitCode) => {
    collectedLogs.push(stdout, stderr);
    return { exitCode, stdout, stderr };
  });
  return { child, output: watch.output, waitFor: watch.waitFor, done };
}

/** Fails when any collected log holds one of the secrets (raw or URL-encoded). */
export function findSecretsInLogs(secrets: string[]): string[] {
  const hits: string[] = [];
  for (const s of secrets) {
    for (const form of new Set([s, encodeURIComponent(s)])) {
      if (collectedLogs.some((l) => l.includes(form))) hits.push(form);
    }
  }
  return hits;
}

/** Action inputs as CLI options (`{ 's3-bucket': 'b' }` -> `['--s3-bucket', 'b']`): the CLI takes the same names. */
export function cliArgs(inputs: Record<string, string>): string[] {
  return Object.entries(inputs).flatMap(([k, v]) => [`--${k}`, v]);
}

/** The inputs every test bucket on the embedded S3 server needs, for one database's stream. */
export function s3TestInputs(endpoint: string, bucket: string, database: string): Record<string, string> {
  return { 's3-bucket': bucket, 's3-endpoint': endpoint, 's3-force-path-style': 'true', database };
}
