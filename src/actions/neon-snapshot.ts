import { runAction } from '../lib/runtime.js';
import { neonSnapshotAction } from '../handlers/neon-snapshot.js';

await runAction('neon-snapshot', neonSnapshotAction);
