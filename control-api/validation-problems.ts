import type { FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { RESOURCE_NAME_PATTERN, resourceNameProblem } from '../core/index.js';

/** One field a request got wrong, and why, in words a person can act on. */
export interface FieldProblem {
  /** Where the field was: body, params, querystring or headers. */
  in: string;
  /** Dotted path of the field, e.g. `name` or `size`. */
  field: string;
  problem: string;
}

/**
 * Turns ajv's errors into one problem per field. A resource name that fails its
 * pattern is explained by `resourceNameProblem` (too long, bad character, hyphen
 * at an end) rather than by the regular expression.
 */
export function validationProblems(errors: FastifySchemaValidationError[], context: string, request: FastifyRequest): FieldProblem[] {
  const byField = new Map<string, FieldProblem>();
  for (const e of errors) {
    const params = e.params as Record<string, unknown>;
    let path = pointerToPath(e.instancePath);
    let problem: string;
    switch (e.keyword) {
      case 'required':
        path = joinPath(path, String(params.missingProperty));
        problem = 'is required';
        break;
      case 'additionalProperties':
        path = joinPath(path, String(params.additionalProperty));
        problem = 'is not a known field';
        break;
      case 'enum':
        problem = `must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
        break;
      case 'pattern':
        problem = params.pattern === RESOURCE_NAME_PATTERN ? (resourceNameProblem(String(valueAt(request, context, e.instancePath))) ?? 'is not a valid name') : (e.message ?? 'is invalid');
        break;
      case 'type':
        problem = path === '' ? `must be a JSON ${String(params.type)}` : (e.message ?? 'has the wrong type');
        break;
      case 'minProperties':
        problem = 'must set at least one field';
        break;
      default:
        problem = e.message ?? 'is invalid';
    }
    const field = path === '' ? `(${context})` : path;
    const known = byField.get(field);
    // A name that breaks its pattern also breaks minLength/maxLength: keep the sentence that says why.
    if (known && !(e.keyword === 'pattern' && params.pattern === RESOURCE_NAME_PATTERN)) continue;
    byField.set(field, { in: context, field, problem });
  }
  return [...byField.values()];
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function joinPath(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

function valueAt(request: FastifyRequest, context: string, pointer: string): unknown {
  const root: unknown = context === 'params' ? request.params : context === 'querystring' ? request.query : context === 'headers' ? request.headers : request.body;
  let value = root;
  for (const key of pointer.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}
