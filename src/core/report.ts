import { localFiles, type Files } from '../lib/files.js';
import path from 'node:path';
import { compactUtc, databasePrefix, prefixBase } from '../lib/keys.js';
import type { Logger } from '../lib/log.js';
import type { Manifest } from '../lib/manifest.js';
import type { ObjectStore } from '../lib/s3.js';
import { TOOL } from '../version.js';
import { listBackups, readManifest, type VerificationRecord } from './catalog.js';
import {
  streamReport,
  type BackupFact,
  type Expectation,
  type StreamFacts,
  type StreamReport,
  type Targets,
  type VerificationFact,
} from './evidence.js';
import { describePolicy, mapLimit } from './prune.js';
import { reportHtml, reportMarkdown } from './report-render.js';

export interface ReportOptions {
  prefix: string;
  databases: string[];
  sinceText: string;
  sinceSeconds: number;
  expect?: Expectation;
  targets: Targets;
  timeZone: string;
  /** Directory for the three files. */
  outDir: string;
}

/** The report JSON, format version 1: see docs/FORMAT.md. */
export interface EvidenceReport {
  formatVersion: 1;
  type: 'backup-report';
  generatedAt: string;
  period: { from: string; to: string; since: string };
  store: string;
  timeZone: string;
  expect: { text: string; policy: string; maxAgeSeconds: number | null } | null;
  targets: { rtoSeconds: number | null; rpoSeconds: number | null };
  compliant: boolean;
  databases: StreamReport[];
  github: { repository: string; runUrl: string; sha: string } | null;
  tool: { name: string; version: string };
}

/** A verification record's time from its key (`verifications/<yyyymmddThhmmssZ>-<rand>.json`). */
function keyTime(key: string): Date | undefined {
  const m = /verifications\/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(key);
  return m ? new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`) : undefined;
}

function encryptionOf(m: Manifest): string {
  const e = m.artifacts[0]?.encryption;
  return e
    ? `age (${e.recipients.length} recipient${e.recipients.length === 1 ? '' : 's'})`
    : 'none (server-side only)';
}

/** Reads one stream's backups, manifests and verification records of the period. */
export async function gatherFacts(
  store: ObjectStore,
  prefix: string,
  database: string,
  from: Date,
): Promise<StreamFacts> {
  const entries = await listBackups(store, prefix, database);
  const complete = entries.filter((e) => e.complete);
  const recent = complete.filter((e) => e.time >= from);
  const manifests = await mapLimit(recent, 8, (e) => readManifest(store, e));
  const backups: BackupFact[] = manifests.map((m, i) => {
    const dump = m.artifacts.find((a) => a.name === 'dump') ?? m.artifacts[0]!;
    return {
      backupId: m.backupId,
      time: recent[i]!.time,
      completedAt: m.completedAt,
      kind: m.kind,
      bytes: m.artifacts.reduce((s, a) => s + a.bytes, 0),
      sha256: dump.sha256,
      encryption: encryptionOf(m),
      artifacts: m.artifacts.map((a) => ({ name: a.name, key: a.key, bytes: a.bytes, sha256: a.sha256 })),
      github: m.github ? { repository: m.github.repository, runUrl: m.github.runUrl, sha: m.github.sha } : null,
      ...(m.objectLock ? { objectLock: { mode: m.objectLock.mode, retainUntil: m.objectLock.retainUntil } } : {}),
    };
  });
  const recordKeys = complete.flatMap((e) => e.verificationKeys).filter((k) => (keyTime(k) ?? from) >= from);
  const records = await mapLimit(recordKeys, 8, async (k) => (await store.getJson(k)) as VerificationRecord);
  const verifications: VerificationFact[] = records
    .filter((r) => r && (r.status === 'passed' || r.status === 'failed'))
    .map((r) => ({
      backupId: r.backupId,
      verifiedAt: new Date(r.verifiedAt),
      status: r.status,
      mode: r.source === 'neon' ? 'neon-pitr' : r.mode,
      rtoSeconds: r.rtoSeconds,
      rpoSeconds: r.rpoSeconds,
      failures: r.failures ?? [],
      runUrl: r.github?.runUrl ?? null,
    }));
  return {
    database,
    complete: complete.map((e) => ({ backupId: e.backupId, time: e.time })),
    backups,
    verifications,
    incomplete: entries.filter((e) => !e.complete).map((e) => ({ backupId: e.backupId, time: e.time })),
  };
}

export interface ReportResult {
  report: EvidenceReport;
  htmlPath: string;
  jsonPath: string;
  markdownPath: string;
  /** Object keys of the stored copies. */
  storedKeys: string[];
}

export async function runReport(
  o: ReportOptions,
  deps: { store: ObjectStore; log: Logger; now?: Date; github?: EvidenceReport['github']; files?: Files },
): Promise<ReportResult> {
  const now = deps.now ?? new Date();
  const from = new Date(now.getTime() - o.sinceSeconds * 1000);
  const databases: StreamReport[] = [];
  for (const database of o.databases) {
    const facts = await gatherFacts(deps.store, o.prefix, database, from);
    const r = streamReport(facts, o.expect, o.targets, { from, now, timeZone: o.timeZone });
    deps.log.info(
      `${database}: ${r.totals.backups} backup(s), ${r.totals.verificationsPassed} passed and ${r.totals.verificationsFailed} failed verification(s), ${r.failures.length} failure(s); ${r.compliant ? 'compliant' : `NOT compliant: ${r.problems.length} problem(s)`}`,
    );
    databases.push(r);
  }
  const report: EvidenceReport = {
    formatVersion: 1,
    type: 'backup-report',
    generatedAt: now.toISOString(),
    period: { from: from.toISOString(), to: now.toISOString(), since: o.sinceText },
    store: `s3://${deps.store.bucket}/${prefixBase(o.prefix)}`,
    timeZone: o.timeZone,
    expect: o.expect
      ? { text: o.expect.text, policy: describePolicy(o.expect.policy), maxAgeSeconds: o.expect.maxAgeSeconds ?? null }
      : null,
    targets: { rtoSeconds: o.targets.rtoSeconds ?? null, rpoSeconds: o.targets.rpoSeconds ?? null },
    compliant: databases.every((d) => d.compliant),
    databases,
    github: deps.github ?? null,
    tool: TOOL,
  };
  const stamp = compactUtc(now);
  const files = {
    json: JSON.stringify(report, null, 2) + '\n',
    md: reportMarkdown(report),
    html: reportHtml(report),
  };
  const base = path.join(o.outDir, `backup-report-${stamp}`);
  const disk = deps.files ?? localFiles;
  disk.writeText(`${base}.json`, files.json);
  disk.writeText(`${base}.md`, files.md);
  disk.writeText(`${base}.html`, files.html);
  const storedKeys: string[] = [];
  for (const database of o.databases) {
    const dir = `${databasePrefix(o.prefix, database)}reports/${stamp}`;
    await deps.store.putText(`${dir}.json`, files.json, 'application/json');
    await deps.store.putText(`${dir}.md`, files.md, 'text/markdown; charset=utf-8');
    await deps.store.putText(`${dir}.html`, files.html, 'text/html; charset=utf-8');
    storedKeys.push(`${dir}.json`, `${dir}.md`, `${dir}.html`);
  }
  deps.log.info(
    `Stored the report under s3://${deps.store.bucket}/${databasePrefix(o.prefix, o.databases[0]!)}reports/`,
  );
  return { report, htmlPath: `${base}.html`, jsonPath: `${base}.json`, markdownPath: `${base}.md`, storedKeys };
}
