import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validationProblems, type FieldProblem } from './validation-problems.js';

/** The one error shape of the API: `{error: {code, message, details}}`. */
export interface ErrorBody {
  error: { code: string; message: string; details: unknown };
}

/** An error a route means to answer with: its status, a stable code, a sentence for people. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, details: unknown = null) => new ApiError(409, 'conflict', message, details);

export function errorBody(code: string, message: string, details: unknown = null): ErrorBody {
  return { error: { code, message, details } };
}

/** Codes for the errors fastify raises itself, so clients can match on them like on ours. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
};

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
  503: 'unavailable',
};

/** Every error leaves in the one shape: ours, fastify's (validation, parsing, limits) and unknown routes. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      return reply.status(err.statusCode).send(errorBody(err.code, err.message, err.details));
    }
    if (err.validation) {
      const problems = validationProblems(err.validation, err.validationContext ?? 'body', request);
      return reply.status(400).send(errorBody('invalid_request', describeProblems(problems), { fields: problems }));
    }
    if (catalogUnavailable(err)) {
      request.log.warn({ err: err.message }, 'catalog unavailable');
      return reply.status(503).header('retry-after', '5').send(errorBody('unavailable', 'the catalog database is unavailable; try again shortly'));
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err }, 'request failed');
      return reply.status(status).send(errorBody('internal', 'internal error; the server log has the details'));
    }
    const code = (err.code && FASTIFY_CODES[err.code]) ?? STATUS_CODES[status] ?? 'bad_request';
    return reply.status(status).send(errorBody(code, err.message));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
  });
}

/** Errors of a lost or refused connection (node's socket codes, SQLSTATE classes 08 and 57P), not of a query. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

/** Whether a request failed because the catalog Postgres is down or restarting: the client may retry (503). */
function catalogUnavailable(err: { code?: string; message?: string; statusCode?: number }): boolean {
  if (err.statusCode !== undefined) return false;
  const code = err.code ?? '';
  if (UNAVAILABLE_CODES.has(code) || code.startsWith('08')) return true;
  // pg's own errors for a connection that ended under a query carry no code.
  return /^Connection terminated|^timeout exceeded when trying to connect|Client has encountered a connection error/.test(err.message ?? '');
}

function describeProblems(problems: FieldProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
}
