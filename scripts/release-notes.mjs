// Prints the CHANGELOG.md section of one version (the release workflow's notes), and fails when there is none, so a
// tag is never released without its entry. Usage: node scripts/release-notes.mjs v1.2.3 [CHANGELOG.md]
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** The body of `## [x.y.z] ...` up to the next `## ` heading, trimmed; undefined when the version has no section. */
export function releaseNotes(changelog, tag) {
  const version = tag.replace(/^v/, '');
  const lines = changelog.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`## [${version}]`));
  if (start < 0) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => l.startsWith('## '));
  const body = (end < 0 ? rest : rest.slice(0, end)).join('\n').trim();
  return body || undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [tag, file = 'CHANGELOG.md'] = process.argv.slice(2);
  if (!tag || !/^v\d+\.\d+\.\d+$/.test(tag)) {
    console.error(`Expected a version tag like v1.2.3, got "${tag ?? ''}".`);
    process.exit(2);
  }
  const notes = releaseNotes(readFileSync(file, 'utf8'), tag);
  if (!notes) {
    console.error(`${file} has no "## [${tag.slice(1)}]" section: add the release's entry before tagging it.`);
    process.exit(1);
  }
  process.stdout.write(notes + '\n');
}
