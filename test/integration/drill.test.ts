import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../harness/index.js';

// The README's main command must keep working: run the drill as `npm run drill` runs it.
test('the drill rehearses backup, verification, disaster and recovery, and leaves nothing running', async () => {
  const child = spawn(process.execPath, [path.join(repoRoot, 'node_modules/tsx/dist/cli.mjs'), 'scripts/drill.ts'], {
    cwd: repoRoot,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(out).toContain('Drill passed');
  expect(code).toBe(0);
  expect(out).toMatch(/public\.audit_logs\s+5000\s+DROPPED\s+5000/);
  expect(out).toMatch(/Verification: passed, RTO [\d.]+ s, RPO \d+ s/);
  const port = /postgres on port (\d+)/.exec(out)![1];
  const ps = await new Promise<string>((resolve) => {
    const p = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    p.stdout.on('data', (d: Buffer) => (s += d.toString()));
    p.on('close', () => resolve(s));
  });
  expect(ps).not.toContain(`-p ${port}`);
});
