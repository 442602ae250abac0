import { runAction } from '../lib/runtime.js';
import { backupReport } from '../handlers/backup-report.js';

await runAction('backup-report', backupReport);
