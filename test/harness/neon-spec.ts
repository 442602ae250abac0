import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { RecordedResponse } from './neon-server.js';
import { OpenApiValidator } from './openapi.js';
import { repoRoot } from './run-action.js';

let validator: OpenApiValidator | undefined;

/** The Neon OpenAPI spec shipped in @neondatabase/api-client, as the test server must follow it. */
function neonValidator(): OpenApiValidator {
  validator ??= new OpenApiValidator(
    parse(
      readFileSync(path.join(repoRoot, 'node_modules/@neondatabase/api-client/public-v2-for-users.gen.yaml'), 'utf8'),
    ) as Record<string, unknown>,
  );
  return validator;
}

/** Every schema problem of the recorded responses (errors are checked against the general error schema). */
export function neonSpecProblems(responses: RecordedResponse[]): { problems: string[]; templates: string[] } {
  const v = neonValidator();
  const problems: string[] = [];
  const templates = new Set<string>();
  for (const r of responses) {
    if (r.template === 'default') {
      problems.push(...v.validateResponse('/projects/{project_id}', 'get', r.status, r.body));
      continue;
    }
    const [p, method] = r.template.split(' ');
    templates.add(r.template);
    problems.push(...v.validateResponse(p!, method!, r.status, r.body));
  }
  return { problems, templates: [...templates].sort() };
}
