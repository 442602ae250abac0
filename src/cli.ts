#!/usr/bin/env node
import { errorMessage, isReported, UserError } from './lib/errors.js';
import { withHeartbeat } from './lib/heartbeat.js';
import { InputReader } from './lib/inputs.js';
import { ConsoleLogger } from './lib/log.js';
import { appendFileSync } from 'node:fs';
import { cancelSummary, handleSignals } from './lib/cancel.js';
import { cancelledLine, consoleIO, type Handler } from './lib/runtime.js';
import { parseArgs as nodeParseArgs } from 'node:util';
import { TOOL } from './version.js';
import { actionSpec, S3_INPUTS, type InputSpec } from './spec.js';
import { pgdumpToS3 } from './handlers/pgdump-to-s3.js';
import { verifyRestore } from './handlers/verify-restore.js';
import { listCommand } from './handlers/list.js';
import { planRetentionCommand, pruneRetention } from './handlers/prune-retention.js';
import { neonSnapshotAction } from './handlers/neon-snapshot.js';
import { openFailureIssue } from './handlers/open-failure-issue.js';
import { backupReport } from './handlers/backup-report.js';

interface Command {
  spec: string;
  handler: Handler;
  summary: string;
  /** Option values this command implies unless given. */
  defaults?: Record<string, string>;
  /** The inputs it takes, when only some of its action's. */
  inputs?: string[];
}

/** The CLI's commands: the actions' operations under the same option names, for laptops and for the day GitHub is down. */
const COMMANDS: Record<string, Command> = {
  backup: { spec: 'pgdump-to-s3', handler: pgdumpToS3, summary: 'pg_dump a database into S3 (pgdump-to-s3)' },
  verify: {
    spec: 'verify-restore',
    handler: verifyRestore,
    summary: 'restore a backup into a scratch database and check it (verify-restore)',
  },
  restore: {
    spec: 'verify-restore',
    handler: verifyRestore,
    summary: 'restore a backup into --target-url (verify-restore with --mode restore; needs --confirm)',
    defaults: { mode: 'restore' },
  },
  recover: {
    spec: 'verify-restore',
    handler: verifyRestore,
    summary:
      'bring back deleted or damaged rows of --tables from a backup, by key, in one transaction (verify-restore with --mode recover)',
    defaults: { mode: 'recover' },
  },
  list: {
    spec: 'verify-restore',
    handler: listCommand,
    summary: 'list the backups of --database with size, kind and verification',
    inputs: [...Object.keys(S3_INPUTS), 'database'],
  },
  'plan-retention': {
    spec: 'prune-retention',
    handler: planRetentionCommand,
    summary: 'preview a retention policy on a JSON array of times read from stdin; touches no storage',
  },
  prune: {
    spec: 'prune-retention',
    handler: pruneRetention,
    summary: 'apply retention to S3 backups, Neon snapshot branches or Neon snapshots (prune-retention)',
  },
  'neon-snapshot': {
    spec: 'neon-snapshot',
    handler: neonSnapshotAction,
    summary: 'create a Neon branch at a point in time, or a snapshot with --method snapshot (neon-snapshot)',
  },
  'neon-restore': {
    spec: 'neon-snapshot',
    handler: neonSnapshotAction,
    summary: 'restore a Neon branch in place to a point in time (neon-snapshot with --mode restore; needs --confirm)',
    defaults: { mode: 'restore' },
  },
  'neon-restore-snapshot': {
    spec: 'neon-snapshot',
    handler: neonSnapshotAction,
    summary:
      'restore a snapshot of the Neon Snapshots API into a new branch, or onto --target-branch (neon-snapshot with --mode restore-snapshot)',
    defaults: { mode: 'restore-snapshot' },
  },
  'neon-finalize-restore': {
    spec: 'neon-snapshot',
    handler: neonSnapshotAction,
    summary:
      'let a branch restored from a snapshot replace its target (neon-snapshot with --mode finalize-restore; needs --confirm)',
    defaults: { mode: 'finalize-restore' },
  },
  'neon-schedule': {
    spec: 'neon-snapshot',
    handler: neonSnapshotAction,
    summary:
      "declare a Neon branch's backup schedule, with --dry-run to see the change (neon-snapshot with --mode schedule)",
    defaults: { mode: 'schedule' },
  },
  report: {
    spec: 'backup-report',
    handler: backupReport,
    summary: 'evidence report of backups, verifications, retention and RTO/RPO over a period (backup-report)',
  },
  'report-status': {
    spec: 'open-failure-issue',
    handler: openFailureIssue,
    summary: 'open, update or close the failure issue of a backup stream (open-failure-issue)',
  },
};

/** An input whose values are `true`/`false` is a flag: `--dry-run` alone means true, `--dry-run=false` false. */
const isFlag = (s: InputSpec) => s.default === 'true' || s.default === 'false';

/** The inputs a command takes: its action's, or the subset it names. */
function commandInputs(c: Command): Record<string, InputSpec> {
  const all = actionSpec(c.spec).inputs;
  return c.inputs ? Object.fromEntries(c.inputs.map((k) => [k, all[k]!])) : all;
}

/**
 * Reads `<command> --name value ...` with node's own parser. Options are every command's inputs, typed from the spec
 * (flags take no value, so `--dry-run prune` is the flag and the command); the command's own set is checked after.
 */
export function parseArgs(argv: string[]): { command?: string; values: Map<string, string>; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const c of Object.values(COMMANDS))
    for (const [k, s] of Object.entries(commandInputs(c))) options[k] = { type: isFlag(s) ? 'boolean' : 'string' };
  // node's parser takes no value for a boolean option: read an explicit `--flag=false` or `--flag false` here (the
  // latter only with the literal words, so `--dry-run prune` stays the flag followed by the command).
  const explicit = new Map<string, string>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m || options[m[1]!]?.type !== 'boolean' || m[1] === 'help') args.push(a);
    else if (m[2] !== undefined) explicit.set(m[1]!, m[2]);
    else if (argv[i + 1] === 'true' || argv[i + 1] === 'false') explicit.set(m[1]!, argv[++i]!);
    else args.push(a);
  }
  let parsed: ReturnType<typeof nodeParseArgs<{ args: string[]; options: typeof options; allowPositionals: true }>>;
  try {
    parsed = nodeParseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const command = args.find((a) => !a.startsWith('-'));
    const where = command && COMMANDS[command] ? `postgres-backup ${command} --help` : 'postgres-backup --help';
    throw new UserError(`${errorMessage(e).split('. ')[0]!.replace(/\.$/, '')}. Run \`${where}\` for the options.`);
  }
  const [command, ...extra] = parsed.positionals;
  if (extra.length) throw new UserError(`Unexpected argument "${extra[0]}": options take the form --name value.`);
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed.values)) if (k !== 'help' && v !== undefined) values.set(k, String(v));
  for (const [k, v] of explicit) values.set(k, v);
  return { command, values, help: parsed.values.help === true };
}

function usage(): string {
  const lines = ['Usage: postgres-backup <command> [--option value ...]', '', 'Commands:'];
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(width)}${c.summary}`);
  lines.push(
    '',
    'Options are the action inputs of the same name; `postgres-backup <command> --help` lists them.',
    '`postgres-backup --version` prints the version.',
  );
  return lines.join('\n');
}

function commandHelp(name: string, c: Command): string {
  const lines = [`Usage: postgres-backup ${name} [--option value ...]`, '', c.summary, '', 'Options:'];
  for (const [input, s] of Object.entries(commandInputs(c))) {
    if (c.defaults?.[input] !== undefined) continue; // implied by the command itself
    const value = isFlag(s) ? '' : ' <value>';
    lines.push(`  --${input}${value}${s.required ? ' (required)' : ''}${s.default ? ` [default: ${s.default}]` : ''}`);
    lines.push(`      ${s.description}`);
  }
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  // The SDK's notice about its own future Node requirement is not actionable for someone restoring a database.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const log = new ConsoleLogger();
  let io: ReturnType<typeof consoleIO> | undefined;
  try {
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
      process.stdout.write(`${TOOL.version}\n`);
      return 0;
    }
    const { command, values, help } = parseArgs(argv);
    if (!command) {
      process.stdout.write(usage() + '\n');
      return help ? 0 : 2;
    }
    const c = COMMANDS[command];
    if (!c) throw new UserError(`Unknown command "${command}".\n${usage()}`);
    if (help) {
      process.stdout.write(commandHelp(command, c) + '\n');
      return 0;
    }
    const spec = actionSpec(c.spec);
    const accepted = commandInputs(c);
    // Mask secrets before anything can print them, including an error about an unknown option.
    for (const [k, v] of values) if (spec.inputs[k]?.secret) log.secret(v);
    for (const k of values.keys()) {
      if (!accepted[k])
        throw new UserError(
          `Unknown option --${k} for ${command}. Run \`postgres-backup ${command} --help\` for the options.`,
        );
    }
    for (const [k, v] of Object.entries(c.defaults ?? {})) if (!values.has(k)) values.set(k, v);
    io = consoleIO(values, log);
    handleSignals(io.cancel, (r) => {
      log.error(`${command} was cancelled (${r.reason}); ${cancelledLine(r)}`);
      // Run as a workflow step, the CLI leaves the same note in the step summary as the actions do.
      const file = io?.run.stepSummaryPath;
      if (file) appendFileSync(file, cancelSummary(`postgres-backup ${command}`, r) + '\n');
    });
    await withHeartbeat(spec, c.handler)(new InputReader(spec, io.source, log), io);
    process.stdout.write(JSON.stringify('value' in io.printed ? io.printed.value : io.outputs, null, 2) + '\n');
    return 0;
  } catch (e) {
    // Failed because it was cancelled: the cancel reports and exits.
    await io?.cancel.exitIfCancelled();
    if (isReported(e)) {
      log.error(errorMessage(e));
      return 1;
    }
    log.error((e as Error)?.stack ?? String(e));
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
