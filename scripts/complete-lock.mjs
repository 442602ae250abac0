// Adds the lock entries of optional, platform-specific binaries that the package registry reachable from this
// workplace does not serve (some @swc/core-* and @unrs/resolver-binding-* builds for other systems). npm records
// them when it can see them; without them `npm ci` refuses the lock as out of sync. Each entry carries its os/cpu
// (and libc), so npm skips it on every other platform, exactly as with a lock made against the full registry.
// Run after `npm install` changes the lock: `node scripts/complete-lock.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const pkgs = lock.packages;

function platform(name) {
  const suffix = name
    .split('/')
    .pop()
    .replace(/^(core|resolver-binding)-/, '');
  const [os, cpu, abi] = suffix.split('-');
  const entry = { os: [os === 'android' ? 'android' : os], cpu: [cpu] };
  if (os === 'linux' && abi) entry.libc = [/musl/.test(abi) ? 'musl' : 'glibc'];
  return entry;
}

let added = 0;
for (const [path, meta] of Object.entries(pkgs)) {
  for (const dep of Object.keys(meta.optionalDependencies ?? {})) {
    if (!/^@(swc\/core|unrs\/resolver-binding)-/.test(dep)) continue;
    const key = `node_modules/${dep}`;
    if (pkgs[key]) continue;
    pkgs[key] = {
      version: meta.optionalDependencies[dep],
      ...platform(dep),
      dev: true,
      license: meta.license ?? 'MIT',
      optional: true,
    };
    added++;
  }
  void path;
}
lock.packages = Object.fromEntries(
  Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`complete-lock: added ${added} platform entries`);
