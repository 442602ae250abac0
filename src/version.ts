/** Recorded in manifests so that readers know which writer produced a backup. */
export const TOOL = { name: 'postgres-backup-actions', version: '1.0.0' };
