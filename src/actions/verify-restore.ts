import { runAction } from '../lib/runtime.js';
import { verifyRestore } from '../handlers/verify-restore.js';

await runAction('verify-restore', verifyRestore);
