import { Cancellation } from '../lib/cancel.js';
import { localFiles, type Files } from '../lib/files.js';
import type { Logger } from '../lib/log.js';
import { localProcesses, type Processes } from '../lib/process.js';
import type { RunContext } from '../lib/run-context.js';
import type { ObjectStore } from '../lib/s3.js';

/** What a backup or a verification receives from its host (the handler): the store, the log, the run, its ports. */
export interface OperationDeps {
  store: ObjectStore;
  log: Logger;
  now?: () => Date;
  /** The run's cancellation: stops the children, aborts uploads, undoes what the operation registered. */
  cancel?: Cancellation;
  /** The workflow run: named in manifests, verification records and the markers of databases it creates. */
  run: RunContext;
  /** How pg_dump, zstd, pg_dumpall and pg_restore are started; the host's by default. */
  processes?: Processes;
  /** The work directory, free space, the files it reads and writes; the host's disk by default. */
  files?: Files;
}

/** The same with every default filled in: what each stage of the operation shares. */
export type Operation = Required<OperationDeps>;

export function operation(deps: OperationDeps): Operation {
  return {
    ...deps,
    cancel: deps.cancel ?? new Cancellation(),
    now: deps.now ?? (() => new Date()),
    processes: deps.processes ?? localProcesses,
    files: deps.files ?? localFiles,
  };
}
