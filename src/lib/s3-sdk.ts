/**
 * The S3 SDK, loaded on first use rather than with the bundle: it is ~0.12 s of a run's start-up, which a backup
 * then spends while pg_dump is starting instead of before it (the bundler puts it in a chunk of its own).
 */
export type S3Sdk = typeof import('@aws-sdk/client-s3');

/** A module is loaded once: every later call gets the same one. */
export const loadS3Sdk = (): Promise<S3Sdk> => import('@aws-sdk/client-s3');
