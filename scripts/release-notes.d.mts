/** The CHANGELOG.md section of `tag` (v1.2.3 or 1.2.3), or undefined when it has none. */
export function releaseNotes(changelog: string, tag: string): string | undefined;
