import { runAction } from '../lib/runtime.js';
import { pruneRetention } from '../handlers/prune-retention.js';

await runAction('prune-retention', pruneRetention);
