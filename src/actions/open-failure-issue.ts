import { runAction } from '../lib/runtime.js';
import { openFailureIssue } from '../handlers/open-failure-issue.js';

await runAction('open-failure-issue', openFailureIssue);
