import pkg from '../package.json' with { type: 'json' };

/** Recorded in manifests so that readers know which writer produced a backup; the version is package.json's. */
export const TOOL = { name: 'postgres-backup-actions', version: pkg.version };
