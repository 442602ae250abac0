import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../harness/run-action.js';
import { ACTIONS } from '../../src/spec.js';

interface ActionYml {
  inputs: Record<string, { description: string; required: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
  description: string;
  runs: { using: string; main: string };
}

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const actionDirs = readdirSync(path.join(repoRoot, 'actions'));

/** The rows of the markdown table in README.md's section for one action, as cells. */
function readmeRows(action: string, header: string): string[][] {
  const start = readme.indexOf(`<!-- tables:${action} -->`);
  const end = readme.indexOf(`<!-- /tables:${action} -->`);
  expect(start).toBeGreaterThanOrEqual(0);
  const lines = readme.slice(start, end).split('\n');
  const h = lines.findIndex((l) => l.startsWith(`| ${header} |`));
  const rows: string[][] = [];
  for (const l of lines.slice(h + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(
      l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim().replace(/\\\|/g, '|')),
    );
  }
  return rows;
}

const unquote = (s: string) => s.replace(/^`|`$/g, '');

describe.each(actionDirs)('actions/%s', (name) => {
  const yml = parse(readFileSync(path.join(repoRoot, 'actions', name, 'action.yml'), 'utf8')) as ActionYml;

  test('runs on node24 from its committed bundle', () => {
    expect(yml.runs.using).toBe('node24');
    expect(yml.runs.main).toBe(`../../dist/${name}/index.js`);
    expect(existsSync(path.join(repoRoot, 'actions', name, yml.runs.main))).toBe(true);
  });

  test("its description fits the Marketplace's 125 characters", () => {
    expect(yml.description.length).toBeLessThanOrEqual(125);
  });

  test('every input and output is described', () => {
    for (const [k, i] of Object.entries(yml.inputs)) expect([k, i.description.length > 10]).toEqual([k, true]);
    for (const [k, o] of Object.entries(yml.outputs)) expect([k, o.description.length > 10]).toEqual([k, true]);
  });

  test("the README's inputs table matches action.yml exactly", () => {
    const rows = readmeRows(name, 'Input');
    const fromReadme = rows.map(([input, required, def, description]) => ({
      input: unquote(input!),
      required: required === 'yes',
      default: unquote(def!),
      description: description!,
    }));
    const fromYml = Object.entries(yml.inputs).map(([input, i]) => ({
      input,
      required: i.required,
      default: i.default ?? '',
      description: i.description.replace(/\n/g, ' '),
    }));
    expect(fromReadme).toEqual(fromYml);
  });

  test("the README's outputs table matches action.yml exactly", () => {
    const rows = readmeRows(name, 'Output');
    expect(rows.map(([o, d]) => [unquote(o!), d])).toEqual(
      Object.entries(yml.outputs).map(([o, v]) => [o, v.description]),
    );
  });

  test('action.yml agrees with the spec the code reads its defaults from', () => {
    const spec = ACTIONS.find((a) => a.name === name)!;
    expect(Object.keys(yml.inputs)).toEqual(Object.keys(spec.inputs));
    for (const [k, i] of Object.entries(spec.inputs)) expect([k, yml.inputs[k]!.default]).toEqual([k, i.default]);
  });
});

test('every action in the spec has an action.yml', () => {
  expect(actionDirs.sort()).toEqual(ACTIONS.map((a) => a.name).sort());
});
