import { runAction } from '../lib/runtime.js';
import { pgdumpToS3 } from '../handlers/pgdump-to-s3.js';

await runAction('pgdump-to-s3', pgdumpToS3);
