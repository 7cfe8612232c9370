import type { FastifyRequest } from 'fastify';

/**
 * preValidation for routes whose every body field is optional: a POST sent
 * with no body at all (curl -X POST) is taken as `{}` rather than refused.
 */
export async function noBodyMeansEmpty(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}
