import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parse } from 'yaml';
import { repoRoot } from '../harness/run-action.js';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: Record<string, unknown> | 'inherit';
  permissions?: unknown;
  steps?: Step[];
}
interface Workflow {
  on: Record<
    string,
    {
      inputs?: Record<string, { required?: boolean; default?: unknown }>;
      secrets?: Record<string, { required?: boolean }>;
    }
  >;
  jobs: Record<string, Job>;
}

const workflowDir = path.join(repoRoot, '.github/workflows');
const files = [
  ...readdirSync(workflowDir).map((f) => path.join(workflowDir, f)),
  ...readdirSync(path.join(repoRoot, 'docs/examples')).map((f) => path.join(repoRoot, 'docs/examples', f)),
].filter((f) => f.endsWith('.yml'));
const rel = (f: string) => path.relative(repoRoot, f);
const load = (f: string) => parse(readFileSync(f, 'utf8')) as Workflow;

/** Our own references: `$/actions/x`, `./...`, or `OWNER/postgres-backup-actions/...@v1` in recipes. */
function ours(uses: string): string | undefined {
  const m = /^(?:\$\/|\.\/|OWNER\/postgres-backup-actions\/)([^@]+?)(?:@v1)?$/.exec(uses);
  return m?.[1];
}

function actionInputs(dir: string): Record<string, { required: boolean; default?: string }> {
  return (
    parse(readFileSync(path.join(repoRoot, dir, 'action.yml'), 'utf8')) as {
      inputs: Record<string, { required: boolean; default?: string }>;
    }
  ).inputs;
}

test('there are the three reusable workflows, CI, the release workflow and the recipes', () => {
  expect(files.map(rel).sort()).toEqual([
    '.github/workflows/backup.yml',
    '.github/workflows/ci.yml',
    '.github/workflows/release.yml',
    '.github/workflows/restore.yml',
    '.github/workflows/verify.yml',
    'docs/examples/all-databases.yml',
    'docs/examples/manual-restore.yml',
    'docs/examples/monthly-evidence.yml',
    'docs/examples/nightly-neon.yml',
    'docs/examples/nightly-verify.yml',
    'docs/examples/pre-migration.yml',
    'docs/examples/s3-compatible.yml',
    'docs/examples/verify-extensions.yml',
  ]);
});

describe.each(files.map((f) => [rel(f), f]))('%s', (_name, file) => {
  const text = readFileSync(file, 'utf8');
  const wf = load(file);

  test("parses with GitHub's own workflow parser", () => {
    const result = parseWorkflow({ name: rel(file), content: text }, new NoOperationTraceWriter());
    expect(result.context.errors.getErrors().map((e) => e.message)).toEqual([]);
  });

  test('every job declares least-privilege permissions, and the workflow defaults to none', () => {
    expect((wf as unknown as { permissions?: unknown }).permissions).toEqual({});
    for (const [name, job] of Object.entries(wf.jobs))
      expect([name, job.permissions !== undefined]).toEqual([name, true]);
  });

  test('no untrusted expression inside run:', () => {
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps ?? []) {
        if (step.run)
          expect([step.run, /\$\{\{\s*(inputs|secrets|github\.event|needs|steps|vars)\./.test(step.run)]).toEqual([
            step.run,
            false,
          ]);
      }
    }
  });

  test('third-party actions are pinned by full commit SHA', () => {
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps ?? []) {
        if (!step.uses || ours(step.uses)) continue;
        expect([step.uses, /^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/.test(step.uses)]).toEqual([step.uses, true]);
      }
    }
  });

  test('every with: given to our actions exists in its action.yml, and every required input is given', () => {
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps ?? []) {
        const dir = step.uses && ours(step.uses);
        if (!dir || !dir.startsWith('actions/')) continue;
        const inputs = actionInputs(dir);
        for (const k of Object.keys(step.with ?? {})) expect([dir, k, k in inputs]).toEqual([dir, k, true]);
        for (const [k, i] of Object.entries(inputs))
          if (i.required) expect([dir, k, k in (step.with ?? {})]).toEqual([dir, k, true]);
      }
    }
  });

  test('calls to our reusable workflows pass only declared inputs and secrets, and all required ones', () => {
    for (const job of Object.values(wf.jobs)) {
      const target = job.uses && ours(job.uses);
      if (!target) continue;
      const called = load(path.join(repoRoot, target)).on.workflow_call!;
      const inputs = called.inputs ?? {};
      const secrets = called.secrets ?? {};
      for (const k of Object.keys(job.with ?? {}))
        expect([target, 'input', k, k in inputs]).toEqual([target, 'input', k, true]);
      for (const [k, i] of Object.entries(inputs))
        if (i.required) expect([target, 'input', k, k in (job.with ?? {})]).toEqual([target, 'input', k, true]);
      expect(job.secrets).not.toBe('inherit');
      for (const k of Object.keys(job.secrets ?? {}))
        expect([target, 'secret', k, k in secrets]).toEqual([target, 'secret', k, true]);
      for (const [k, s] of Object.entries(secrets))
        if (s.required)
          expect([target, 'secret', k, k in (job.secrets as object)]).toEqual([target, 'secret', k, true]);
    }
  });
});

test('the reusable workflows use the actions of their own commit ($/), never a tag that drifts', () => {
  for (const f of ['backup.yml', 'verify.yml', 'restore.yml']) {
    const wf = load(path.join(workflowDir, f));
    const uses = Object.values(wf.jobs)
      .flatMap((j) => (j.steps ?? []).map((s) => s.uses ?? ''))
      .filter((u) => u.includes('actions/') && !u.includes('@'));
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u).toMatch(/^\$\/actions\/[a-z0-9-]+$/);
  }
});

test('backup.yml and verify.yml pass `databases` and `exclude-databases` through to every action that takes them', () => {
  const expected: Record<string, string[]> = {
    'backup.yml': ['actions/pgdump-to-s3', 'actions/prune-retention'],
    'verify.yml': ['actions/verify-restore'],
  };
  for (const [file, actions] of Object.entries(expected)) {
    const wf = load(path.join(workflowDir, file));
    const declared = wf.on.workflow_call!.inputs!;
    for (const name of ['database', 'databases', 'exclude-databases']) {
      expect([file, name, declared[name]?.required ?? false, declared[name]?.default]).toEqual([file, name, false, '']);
    }
    const steps = Object.values(wf.jobs)
      .flatMap((j) => j.steps ?? [])
      .filter(
        (s) => s.uses && actions.includes(ours(s.uses) ?? '') && s.with?.target !== 'neon' && s.with?.source !== 'neon',
      );
    expect(new Set(steps.map((s) => ours(s.uses!)))).toEqual(new Set(actions));
    for (const step of steps) {
      expect([file, step.uses, step.with?.databases, step.with?.['exclude-databases']]).toEqual([
        file,
        step.uses,
        '${{ inputs.databases }}',
        '${{ inputs.exclude-databases }}',
      ]);
    }
  }
});

test('actionlint finds nothing', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'test/harness/actionlint.cjs'), ...files], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual([]);
});
