import { formatBytes, formatSeconds } from '../lib/log.js';
import { verificationMethod, type Series, type StreamReport } from './evidence.js';
import type { EvidenceReport } from './report.js';

/** The evidence report as Markdown (a job summary with Mermaid charts) and as one self-contained HTML page. Pure. */

const dur = (s: number | null) => (s === null ? '–' : formatSeconds(s));
const yesNo = (ok: boolean | null) => (ok === null ? '–' : ok ? '✅ met' : '❌ missed');
const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function declared(r: EvidenceReport): string {
  const parts: string[] = [];
  if (r.expect) parts.push(`retention: ${r.expect.policy}`);
  if (r.expect?.maxAgeSeconds != null) parts.push(`newest verified backup at most ${dur(r.expect.maxAgeSeconds)} old`);
  if (r.targets.rtoSeconds != null) parts.push(`RTO target ${dur(r.targets.rtoSeconds)}`);
  if (r.targets.rpoSeconds != null) parts.push(`RPO target ${dur(r.targets.rpoSeconds)}`);
  return parts.length ? parts.join(' · ') : 'nothing declared (no `expect`, `rto-target` or `rpo-target`)';
}

function objectiveRows(d: StreamReport): [string, Series][] {
  return [
    ['RTO (restore + checks)', d.objectives.rto],
    ['RPO (data age at verification)', d.objectives.rpo],
    ['Gap between backups', d.objectives.backupGap],
  ];
}

const day = (iso: string) => iso.slice(0, 10);

/** A Mermaid xychart (GitHub renders it): values over time, with the target as a flat second line. */
function mermaidChart(title: string, unit: string, points: { label: string; v: number }[], target?: number | null) {
  if (points.length === 0) return '';
  const labels = points.map((p) => `"${p.label}"`).join(', ');
  const max = Math.max(...points.map((p) => p.v), target ?? 0);
  return [
    '```mermaid',
    'xychart-beta',
    `  title "${title}"`,
    `  x-axis [${labels}]`,
    `  y-axis "${unit}" 0 --> ${Math.ceil(max * 1.1) || 1}`,
    `  line [${points.map((p) => +p.v.toFixed(2)).join(', ')}]`,
    ...(target != null ? [`  line [${points.map(() => +target.toFixed(2)).join(', ')}]`] : []),
    '```',
    '',
  ].join('\n');
}

export function reportMarkdown(r: EvidenceReport): string {
  const out: string[] = [
    `# Backup evidence report: ${r.compliant ? '✅ compliant' : '❌ not compliant'}`,
    '',
    `Period ${r.period.from} to ${r.period.to} (last ${r.period.since}) · \`${r.store}\` · generated ${r.generatedAt}${r.github ? ` by [${r.github.repository}](${r.github.runUrl})` : ''}`,
    '',
    `Declared: ${declared(r)}.`,
    '',
  ];
  for (const d of r.databases) {
    out.push(`## \`${d.database}\`: ${d.compliant ? '✅ compliant' : '❌ not compliant'}`, '');
    if (d.problems.length) out.push(...d.problems.map((p) => `- ❌ ${md(p)}`), '');
    out.push(
      '| Backups | Stored | Verifications passed | Verifications failed | Failures | Newest verified backup |',
      '|---|---|---|---|---|---|',
      `| ${d.totals.backups} | ${formatBytes(d.totals.bytes)} | ${d.totals.verificationsPassed} | ${d.totals.verificationsFailed} | ${d.failures.length} | ${d.freshness.newestVerified ? `\`${d.freshness.newestVerified.backupId}\`, ${dur(d.freshness.ageSeconds)} old ${yesNo(d.freshness.ok)}` : 'none'} |`,
      '',
      '### Objectives',
      '',
      '| | Target | Worst | Median | Best | Trend | Measurements | Result |',
      '|---|---|---|---|---|---|---|---|',
      ...objectiveRows(d).map(
        ([name, s]) =>
          `| ${name} | ${dur(s.target)} | ${dur(s.worst)} | ${dur(s.median)} | ${dur(s.best)} | ${s.trend} | ${s.count} | ${yesNo(s.ok)} |`,
      ),
      '',
    );
    const passed = d.verifications.filter((v) => v.status === 'passed');
    out.push(
      mermaidChart(
        `RTO of ${d.database} (seconds)`,
        'seconds',
        passed.map((v) => ({ label: day(v.verifiedAt.toISOString()), v: v.rtoSeconds })),
        r.targets.rtoSeconds,
      ),
      mermaidChart(
        `Backup size of ${d.database} (MiB)`,
        'MiB',
        d.backups.map((b) => ({ label: day(b.time.toISOString()), v: b.bytes / 1048576 })),
      ),
    );
    if (d.retention.rules.length) {
      out.push('### Retention', '', '| Rule | Expected | Filled | Missing |', '|---|---|---|---|');
      for (const rule of d.retention.rules)
        out.push(`| ${rule.rule} | ${rule.expected} | ${rule.filled} | ${rule.missing} |`);
      out.push('');
      if (d.retention.missing.length) out.push(...d.retention.missing.map((m) => `- ${m}`), '');
    }
    out.push(
      '### Backups',
      '',
      '| Time | Backup | Kind | Size | SHA-256 | Encryption | Immutable until | Verified | Run |',
      '|---|---|---|---|---|---|---|---|---|',
      ...d.backups.map(
        (b) =>
          `| ${b.time.toISOString()} | \`${b.backupId}\` | ${b.kind} | ${formatBytes(b.bytes)} | \`${b.sha256}\` | ${b.encryption} | ${lockCell(b)} | ${b.verified ?? '–'} | ${b.github ? `[${b.github.repository}@${b.github.sha.slice(0, 7)}](${b.github.runUrl})` : '–'} |`,
      ),
      '',
      '### Verifications',
      '',
      '| Time | Backup | Method | Status | RTO | RPO | Run |',
      '|---|---|---|---|---|---|---|',
      ...d.verifications.map(
        (v) =>
          `| ${v.verifiedAt.toISOString()} | \`${v.backupId}\` | ${verificationMethod(v.mode)} | ${v.status === 'passed' ? '✅ passed' : '❌ failed'} | ${dur(v.rtoSeconds)} | ${dur(v.rpoSeconds)} | ${v.runUrl ? `[run](${v.runUrl})` : '–'} |`,
      ),
      '',
    );
    if (d.failures.length) {
      out.push('### Failures', '', '| Time | What | Backup | Detail |', '|---|---|---|---|');
      for (const f of d.failures) out.push(`| ${f.time} | ${f.what} | \`${f.backupId}\` | ${md(f.detail)} |`);
      out.push('');
    }
  }
  return out.join('\n');
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** An inline SVG line chart of values over time, with an optional dashed target line. */
export function svgChart(
  title: string,
  points: { t: number; v: number }[],
  format: (v: number) => string,
  target?: number | null,
): string {
  const W = 640;
  const H = 220;
  const L = 70;
  const R = 16;
  const T = 28;
  const B = 34;
  if (points.length === 0)
    return `<figure class="chart empty"><figcaption>${esc(title)}</figcaption><p>No data in the period.</p></figure>`;
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(...points.map((p) => p.t));
  const vmax = Math.max(...points.map((p) => p.v), target ?? 0) * 1.1 || 1;
  const x = (t: number) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R));
  const y = (v: number) => T + (1 - v / vmax) * (H - T - B);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const ticks = [0, 0.5, 1].map((f) => vmax * f);
  const parts = [
    `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">`,
    `<text x="${L}" y="16" class="title">${esc(title)}</text>`,
    ...ticks.map(
      (v) =>
        `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${esc(format(v))}</text>`,
    ),
    `<text x="${L}" y="${H - 10}" class="tick">${esc(new Date(t0).toISOString().slice(0, 10))}</text>`,
    `<text x="${W - R}" y="${H - 10}" class="tick" text-anchor="end">${esc(new Date(t1).toISOString().slice(0, 10))}</text>`,
  ];
  if (target != null)
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(target).toFixed(1)}" y2="${y(target).toFixed(1)}" class="target"/><text x="${W - R}" y="${(y(target) - 4).toFixed(1)}" class="tick" text-anchor="end">target ${esc(format(target))}</text>`,
    );
  parts.push(`<path d="${path}" class="line"/>`);
  for (const p of points)
    parts.push(
      `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3" class="point"><title>${esc(new Date(p.t).toISOString())}: ${esc(format(p.v))}</title></circle>`,
    );
  parts.push('</svg>');
  return parts.join('');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#59636e}.ok{color:#1a7f37}.bad{color:#cf222e}.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.badge.ok{background:#dafbe1}.badge.bad{background:#ffebe9}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:12.5px}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font:11.5px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:6px;background:#fff}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:11px;fill:#59636e}.chart .grid{stroke:#eaeef2}.chart .line{fill:none;stroke:#0969da;stroke-width:2}
.chart .point{fill:#0969da}.chart .target{stroke:#cf222e;stroke-dasharray:6 4}
ul.problems li{color:#cf222e}
@page{size:A4;margin:14mm}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-before:page}h2:first-of-type{break-before:auto}table,figure,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
`;

function htmlTable(head: string[], rows: string[][], numeric: number[] = []): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const okHtml = (ok: boolean | null) =>
  ok === null ? '–' : ok ? '<span class="ok">met</span>' : '<span class="bad">missed</span>';

function databaseHtml(r: EvidenceReport, d: StreamReport): string {
  const passed = d.verifications.filter((v) => v.status === 'passed');
  const parts = [
    `<section><h2>${esc(d.database)} <span class="badge ${d.compliant ? 'ok' : 'bad'}">${d.compliant ? 'compliant' : 'not compliant'}</span></h2>`,
  ];
  if (d.problems.length)
    parts.push(`<ul class="problems">${d.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`);
  parts.push(
    htmlTable(
      ['Backups', 'Stored', 'Verifications passed', 'Verifications failed', 'Failures', 'Newest verified backup'],
      [
        [
          String(d.totals.backups),
          esc(formatBytes(d.totals.bytes)),
          String(d.totals.verificationsPassed),
          String(d.totals.verificationsFailed),
          String(d.failures.length),
          d.freshness.newestVerified
            ? `<code>${esc(d.freshness.newestVerified.backupId)}</code>, ${esc(dur(d.freshness.ageSeconds))} old (${okHtml(d.freshness.ok)})`
            : 'none',
        ],
      ],
      [0, 2, 3, 4],
    ),
    '<h3>Objectives</h3>',
    htmlTable(
      ['', 'Target', 'Worst', 'Median', 'Best', 'Trend', 'Measurements', 'Result'],
      objectiveRows(d).map(([name, s]) => [
        esc(name),
        esc(dur(s.target)),
        esc(dur(s.worst)),
        esc(dur(s.median)),
        esc(dur(s.best)),
        s.trend,
        String(s.count),
        okHtml(s.ok),
      ]),
      [1, 2, 3, 4, 6],
    ),
    '<div class="charts">',
    svgChart(
      `RTO of passed verifications (${d.database})`,
      passed.map((v) => ({ t: v.verifiedAt.getTime(), v: v.rtoSeconds })),
      (v) => formatSeconds(v),
      r.targets.rtoSeconds,
    ),
    svgChart(
      `Backup size (${d.database})`,
      d.backups.map((b) => ({ t: b.time.getTime(), v: b.bytes })),
      (v) => formatBytes(Math.round(v)),
    ),
    '</div>',
  );
  if (d.retention.rules.length) {
    parts.push(
      '<h3>Retention</h3>',
      htmlTable(
        ['Rule', 'Expected', 'Filled', 'Missing', 'Missing slots'],
        d.retention.rules.map((rule) => [
          rule.rule,
          String(rule.expected),
          String(rule.filled),
          String(rule.missing),
          esc(
            rule.slots
              .filter((s) => s.status === 'missing')
              .map((s) => s.slot)
              .join(', ') || '–',
          ),
        ]),
        [1, 2, 3],
      ),
    );
  }
  parts.push(
    '<h3>Backups</h3>',
    htmlTable(
      ['Time', 'Backup', 'Kind', 'Size', 'SHA-256', 'Encryption', 'Immutable until', 'Verified', 'Run'],
      d.backups.map((b) => [
        esc(b.time.toISOString()),
        `<code>${esc(b.backupId)}</code>`,
        esc(b.kind),
        esc(formatBytes(b.bytes)),
        `<code>${esc(b.sha256)}</code>`,
        esc(b.encryption),
        esc(lockCell(b)),
        b.verified ?? '–',
        b.github
          ? `<a href="${esc(b.github.runUrl)}">${esc(b.github.repository)}</a> <code>${esc(b.github.sha.slice(0, 7))}</code>`
          : '–',
      ]),
    ),
    '<h3>Verifications</h3>',
    htmlTable(
      ['Time', 'Backup', 'Method', 'Status', 'RTO', 'RPO', 'Run'],
      d.verifications.map((v) => [
        esc(v.verifiedAt.toISOString()),
        `<code>${esc(v.backupId)}</code>`,
        esc(verificationMethod(v.mode)),
        v.status === 'passed' ? '<span class="ok">passed</span>' : '<span class="bad">failed</span>',
        esc(dur(v.rtoSeconds)),
        esc(dur(v.rpoSeconds)),
        v.runUrl ? `<a href="${esc(v.runUrl)}">run</a>` : '–',
      ]),
      [4, 5],
    ),
  );
  if (d.failures.length)
    parts.push(
      '<h3>Failures</h3>',
      htmlTable(
        ['Time', 'What', 'Backup', 'Detail'],
        d.failures.map((f) => [esc(f.time), f.what, `<code>${esc(f.backupId)}</code>`, esc(f.detail)]),
      ),
    );
  parts.push('</section>');
  return parts.join('\n');
}

/** One HTML file: inline CSS and SVG, no script, nothing fetched; prints to PDF from a browser. */
export function reportHtml(r: EvidenceReport): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Backup evidence report ${esc(r.generatedAt.slice(0, 10))}</title><style>${CSS}</style></head>
<body>
<header><h1>Backup evidence report <span class="badge ${r.compliant ? 'ok' : 'bad'}" id="verdict">${r.compliant ? 'compliant' : 'not compliant'}</span></h1>
<p class="meta">Period ${esc(r.period.from)} to ${esc(r.period.to)} (last ${esc(r.period.since)}) · <code>${esc(r.store)}</code> · days in ${esc(r.timeZone)}<br>
Generated ${esc(r.generatedAt)} by ${esc(r.tool.name)} ${esc(r.tool.version)}${r.github ? ` in <a href="${esc(r.github.runUrl)}">${esc(r.github.repository)}</a> at <code>${esc(r.github.sha.slice(0, 12))}</code>` : ''}<br>
Declared: ${esc(declared(r))}</p></header>
${r.databases.map((d) => databaseHtml(r, d)).join('\n')}
</body></html>
`;
}

/** S3 Object Lock evidence of one backup: its retain-until date and mode, or a dash. */
function lockCell(b: { objectLock?: { mode: string; retainUntil: string } }): string {
  return b.objectLock ? `${b.objectLock.retainUntil} (Object Lock, ${b.objectLock.mode})` : '–';
}
