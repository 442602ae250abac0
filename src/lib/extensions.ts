/** Extensions a dump needs, and what to say when the restore target lacks them. Pure: no I/O. */

/** The `EXTENSION` entries of a `pg_restore -l` listing (`3; 3079 16385 EXTENSION - vector <owner>`). */
export function extensionsInToc(toc: string): string[] {
  const names = new Set<string>();
  for (const line of toc.split('\n')) {
    const m = /^\d+; \d+ \d+ EXTENSION - (\S+)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return [...names];
}

/** Images that ship common extensions, for the reusable workflow's `postgres-image`. */
const IMAGES: Record<string, string> = {
  vector: '`pgvector/pgvector:pg17`',
  postgis: '`postgis/postgis:17-3.5`',
  postgis_topology: '`postgis/postgis:17-3.5`',
  postgis_raster: '`postgis/postgis:17-3.5`',
  postgis_tiger_geocoder: '`postgis/postgis:17-3.5`',
  timescaledb: '`timescale/timescaledb:latest-pg17`',
};

/** One message naming every missing extension and how to get them. */
export function missingExtensionsMessage(missing: string[], server: string): string {
  const images = [...new Set(missing.map((m) => IMAGES[m]).filter(Boolean))];
  const example = images.length ? images.join(' or ') : '`pgvector/pgvector:pg17` or `postgis/postgis:17-3.5`';
  return (
    `The backup needs ${missing.length === 1 ? 'the extension' : 'the extensions'} ${missing.map((m) => `"${m}"`).join(', ')}, ` +
    `which the target server (PostgreSQL ${server}) does not have (not in pg_available_extensions); nothing was restored. ` +
    `Restore onto a server that has ${missing.length === 1 ? 'it' : 'them'}: with the reusable workflow verify.yml set \`postgres-image\` ` +
    `to an image that ships ${missing.length === 1 ? 'it' : 'them'} (e.g. ${example}); on your own server install the package ` +
    `(e.g. \`postgresql-17-pgvector\`, \`postgresql-17-postgis-3\`) so that the extension's control file is in the server's extension directory.`
  );
}

/** pg_restore errors that are causes; everything else usually follows from one of them. */
const ROOT_CAUSES: { kind: string; re: RegExp }[] = [
  { kind: 'missing role', re: /role "((?:[^"]|"")+)" does not exist/ },
  { kind: 'missing extension', re: /extension "((?:[^"]|"")+)" is not available/ },
  { kind: 'missing extension', re: /could not open extension control file "[^"]*\/([^"/]+)\.control"/ },
  { kind: 'missing type', re: /type "((?:[^"]|"")+)" does not exist/ },
];

/**
 * pg_restore's error lines as one message: the distinct root causes first (missing role, extension, type), then
 * the follow-on errors as a count; without a known root cause, the first errors as they came.
 */
export function summarizeRestoreErrors(errors: string[], show = 10): string {
  const causes = new Map<string, string>();
  let followOn = 0;
  for (const e of errors) {
    const hit = ROOT_CAUSES.map((c) => ({ c, m: c.re.exec(e) })).find((x) => x.m);
    if (hit) causes.set(`${hit.c.kind} "${hit.m![1]}"`, e);
    else followOn++;
  }
  if (causes.size === 0) return `pg_restore reported ${errors.length} error(s):\n${errors.slice(0, show).join('\n')}`;
  const head = `pg_restore reported ${errors.length} error(s). Root cause${causes.size > 1 ? 's' : ''}: ${[...causes.keys()].join(', ')}`;
  const tail = followOn ? `\nplus ${followOn} follow-on error(s)` : '';
  return `${head}\n${[...causes.values()].slice(0, show).join('\n')}${tail}`;
}
