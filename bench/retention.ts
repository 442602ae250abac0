// npm run bench:retention — planning 100,000 backups (and 1,000,000) with a typical policy, in UTC and in a time
// zone with DST. Prints; asserts nothing.
import { planRetention, type RetentionPolicy } from '../src/core/retention.js';
import { parseCalendarDuration } from '../src/lib/duration.js';

const policy: RetentionPolicy = {
  last: 5,
  hourly: 24,
  daily: 30,
  weekly: 8,
  monthly: 12,
  yearly: -1,
  within: parseCalendarDuration('keep-within', '3d'),
  withinText: '3d',
};
console.log('| Backups | Time zone | Plan time | Kept |');
console.log('|---|---|---|---|');
for (const n of [100_000, 1_000_000]) {
  // Ten years of backups ending now, evenly spaced (100,000: one every 53 minutes; 1,000,000: every 5 minutes).
  const end = Date.now();
  const step = (10 * 365 * 86_400_000) / n;
  const input = Array.from({ length: n }, (_, i) => ({
    id: `b${i}`,
    time: new Date(end - (n - 1 - i) * step),
    item: i,
  }));
  for (const timeZone of ['UTC', 'Europe/Berlin']) {
    planRetention(input.slice(0, 1000), policy, { timeZone }); // warm-up
    const t0 = performance.now();
    const plan = planRetention(input, policy, { timeZone });
    const ms = performance.now() - t0;
    console.log(
      `| ${n.toLocaleString('en-US')} over 10 years | ${timeZone} | ${(ms / 1000).toFixed(3)} s | ${plan.keep.length} |`,
    );
  }
}
