import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** OpenAPI 3.0 `nullable` is not JSON Schema: rewrite it as a type union, everywhere. */
function convertNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNullable);
  if (node === null || typeof node !== 'object') return node;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) o[k] = convertNullable(v);
  if (o.nullable === true) {
    delete o.nullable;
    if (typeof o.type === 'string') o.type = [o.type, 'null'];
    if (Array.isArray(o.enum)) o.enum = [...o.enum, null];
    if (!o.type && (o.$ref || o.allOf || o.oneOf || o.anyOf)) return { anyOf: [{ type: 'null' }, o] };
  }
  return o;
}

const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Validates bodies against an OpenAPI 3 document: `validateResponse(path, method, status, body)` returns the
 * schema errors, or an empty list. Response $refs (components/responses) are followed.
 */
export class OpenApiValidator {
  private readonly ajv: Ajv;
  private readonly doc: Record<string, unknown>;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(spec: Record<string, unknown>) {
    this.doc = convertNullable(spec) as Record<string, unknown>;
    this.ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats(this.ajv);
    this.ajv.addSchema(this.doc, 'spec');
  }

  private responsePointer(path: string, method: string, status: string): string | undefined {
    const paths = this.doc.paths as Record<
      string,
      Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema?: unknown }> }> }>
    >;
    const op = paths[path]?.[method.toLowerCase()];
    if (!op) return undefined;
    const key = op.responses[status] ? status : op.responses[`${status[0]}XX`] ? `${status[0]}XX` : 'default';
    let resp = op.responses[key];
    let pointer = `#/paths/${escape(path)}/${method.toLowerCase()}/responses/${key}`;
    if (resp?.$ref) {
      pointer = resp.$ref;
      const name = resp.$ref.split('/').pop()!;
      resp = (this.doc.components as { responses: Record<string, typeof resp> }).responses[name];
    }
    if (!resp?.content?.['application/json']?.schema) return `${pointer}#no-content`;
    return `${pointer}/content/application~1json/schema`;
  }

  validateResponse(path: string, method: string, status: number, body: unknown): string[] {
    const pointer = this.responsePointer(path, method, String(status));
    if (!pointer) return [`${method.toUpperCase()} ${path} is not in the spec`];
    if (pointer.endsWith('#no-content'))
      return body === undefined ? [] : [`${method} ${path} ${status}: the spec has no body, got one`];
    let validate = this.cache.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `spec${pointer.replace(/\{/g, '%7B').replace(/\}/g, '%7D')}` });
      this.cache.set(pointer, validate);
    }
    return validate(body)
      ? []
      : (validate.errors ?? []).map(
          (e) =>
            `${method.toUpperCase()} ${path} ${status}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`,
        );
  }
}
