import { MANIFEST_NAME } from '../lib/keys.js';
import { formatBytes } from '../lib/log.js';
import type { Artifact, Manifest } from '../lib/manifest.js';

/** RECOVERY.md: stored beside manifest.json (before it), so that someone who has only the bucket can restore. */
export const RECOVERY_NAME = 'RECOVERY.md';

/** Where the object store is, for the `aws` commands: nothing for AWS S3, `--endpoint-url` for others. */
export interface RecoveryContext {
  bucket: string;
  endpoint?: string;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function fileName(a: Artifact): string {
  return a.key.slice(a.key.lastIndexOf('/') + 1);
}

/** The stages that turn a downloaded artifact back into what pg_restore or psql reads. */
function unpack(a: Artifact): { command: string; output: string } {
  const file = fileName(a);
  let name = file;
  const stages: string[] = [];
  if (a.encryption) {
    stages.push('age -d -i "$AGE_KEY"');
    name = name.replace(/\.age$/, '');
  }
  if (a.compression === 'zstd') {
    stages.push('zstd -d -c');
    name = name.replace(/\.zst$/, '');
  }
  if (stages.length === 0) return { command: '', output: file };
  if (name === file) name = `${file}.out`;
  const [first, ...rest] = stages;
  return { command: [`${first} ${shellQuote(file)}`, ...rest].join(' | ') + ` > ${shellQuote(name)}`, output: name };
}

/**
 * The commands that restore this exact backup with stock tools (AWS CLI, sha256sum, age, zstd, pg_restore, psql),
 * as one shell block; the tests extract and run it. Every artifact of the manifest is handled by its own fields.
 */
export function recoveryCommands(m: Manifest, ctx: RecoveryContext): string {
  const endpoint = ctx.endpoint ? ` --endpoint-url ${shellQuote(ctx.endpoint)}` : '';
  const lines: string[] = ['set -euo pipefail'];
  for (const a of m.artifacts)
    lines.push(`aws s3 cp${endpoint} ${shellQuote(`s3://${ctx.bucket}/${a.key}`)} ${shellQuote(fileName(a))}`);
  lines.push(
    '# The SHA-256 of every object must equal the one recorded at backup time: a corrupt download stops here.',
  );
  lines.push(`sha256sum -c - <<'EOF'`, ...m.artifacts.map((a) => `${a.sha256}  ${fileName(a)}`), 'EOF');
  // Globals (roles) before the dump, whose objects name them as owners; a multi-artifact backup's sections in
  // their order: pre-data, the data artifacts (any order: here in parallel), post-data (indexes: pg_restore -j).
  const rank = (a: Artifact) =>
    a.format !== 'custom' ? 0 : a.section === 'pre-data' ? 1 : a.section === 'post-data' ? 3 : 2;
  const ordered = [...m.artifacts].sort((a, b) => rank(a) - rank(b));
  const restoreCmd = (file: string, extra = '') =>
    `pg_restore --no-owner --no-acl --exit-on-error${extra} --dbname "$TARGET" ${shellQuote(file)}`;
  const data = ordered.filter((a) => a.format === 'custom' && a.section === 'data');
  for (const a of ordered.filter((a) => !data.includes(a))) {
    if (a.section === 'post-data' && data.length) {
      lines.push(
        `# ${data.map((d) => d.name).join(', ')}: the table data, restored after pre-data and before post-data, in any order or in parallel.`,
        'pids=()',
      );
      for (const d of data) {
        const { command, output } = unpack(d);
        lines.push(`( ${command ? `${command} && ` : ''}${restoreCmd(output)} ) & pids+=($!)`);
      }
      lines.push('for p in "${pids[@]}"; do wait "$p"; done');
    }
    const { command, output } = unpack(a);
    if (command) lines.push(command);
    if (a.format === 'custom') {
      lines.push(restoreCmd(output, a.section === 'post-data' ? ' --jobs=4' : ''));
    } else {
      lines.push(
        `# ${a.name}: a SQL script (${a.name === 'globals' ? 'roles and tablespaces; existing ones report errors, which are harmless' : a.format}).`,
        `psql -X -q --dbname "$TARGET" -f ${shellQuote(output)} >/dev/null`,
      );
    }
  }
  return lines.join('\n');
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The whole RECOVERY.md of one backup. Pure. */
export function recoveryMarkdown(m: Manifest, ctx: RecoveryContext): string {
  const encrypted = m.artifacts.some((a) => a.encryption);
  const tools = ['the AWS CLI', 'sha256sum', ...(encrypted ? ['age'] : [])];
  if (m.artifacts.some((a) => a.compression === 'zstd')) tools.push('zstd');
  tools.push(
    `pg_restore ${m.source?.pgDumpVersion ? `(${m.source.pgDumpVersion.split('.')[0]} or newer)` : ''}`.trim(),
  );
  if (m.artifacts.some((a) => a.format !== 'custom')) tools.push('psql');
  const rows: [string, string][] = [
    ['Backup id', `\`${m.backupId}\``],
    ['Stream (database)', `\`${m.database}\``],
    ['Kind', m.kind],
    ['Started', m.startedAt],
    ...(m.snapshotAt ? ([['Data as of (snapshot)', m.snapshotAt]] as [string, string][]) : []),
    ['Completed', m.completedAt],
    ...(m.objectLock
      ? ([
          [
            'S3 Object Lock',
            `${m.objectLock.mode} mode: no object of this backup can be deleted or overwritten before ${m.objectLock.retainUntil}`,
          ],
        ] as [string, string][])
      : []),
    ...(m.source
      ? ([
          [
            'Source',
            `\`${m.source.database}\` on \`${m.source.host}:${m.source.port}\`, PostgreSQL ${m.source.serverVersion}`,
          ],
          ['pg_dump', m.source.pgDumpVersion],
        ] as [string, string][])
      : []),
    ['Tables / rows', `${m.tables.length} / ${m.totalRows ?? 0}`],
    ...(m.github
      ? ([['Written by', `${m.github.repository}, run ${m.github.runUrl}, commit \`${m.github.sha}\``]] as [
          string,
          string,
        ][])
      : []),
    ['Manifest', `\`s3://${ctx.bucket}/${m.artifacts[0]!.key.replace(/[^/]+$/, MANIFEST_NAME)}\``],
  ];
  const lines = [
    `# Recovery of backup ${m.backupId}`,
    '',
    `This file was written with the backup, before its manifest. It restores this exact backup with stock tools only (${tools.join(', ')}); nothing of postgres-backup-actions is needed.`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
    '## Files',
    '',
    '| Artifact | Object | Size | SHA-256 | Compression | Encryption |',
    '|---|---|---|---|---|---|',
    ...m.artifacts.map(
      (a) =>
        `| ${a.name} (${a.format}) | \`${a.key}\` | ${a.bytes} bytes (${formatBytes(a.bytes)}) | \`${a.sha256}\` | ${a.compression} | ${a.encryption ? `age, ${a.encryption.recipients.length} recipient(s)` : 'none'} |`,
    ),
    '',
    '## Restore',
    '',
    'In an empty directory, with AWS credentials that can read the bucket in the environment, set `TARGET` to the',
    'connection URL of an empty database to restore into (the password in `PGPASSWORD`, not in the URL)' +
      (encrypted ? ' and `AGE_KEY` to the path of the age identity file' : '') +
      ', then run:',
    '',
    '<!-- recovery-commands -->',
    '',
    '```sh',
    recoveryCommands(m, ctx),
    '```',
    '',
    `Then compare the row counts of the restored tables with \`tables\` in \`${MANIFEST_NAME}\` (${m.tables.length} tables, ${m.totalRows ?? 0} rows in all).`,
    '',
  ];
  return lines.join('\n');
}
