import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { RoleContext } from '../../core/index.js';
import { ApiError } from '../errors.js';
import { errorResponses } from '../schemas.js';

/** Liveness and Prometheus metrics: no API key, nothing about any account. */
export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Healthy when the catalog answers',
        response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errorResponses(503) },
      },
    },
    async () => {
      try {
        await ctx.catalog.pool.query('SELECT 1');
      } catch (err) {
        throw new ApiError(503, 'unavailable', `the catalog does not answer: ${(err as Error).message}`);
      }
      return { status: 'ok' as const };
    },
  );

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics of this process', produces: ['text/plain'] } }, async (_request, reply) => {
    reply.header('content-type', ctx.metrics.contentType);
    return ctx.metrics.metrics();
  });
}
