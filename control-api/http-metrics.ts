import type { FastifyInstance } from 'fastify';
import { Histogram } from 'prom-client';
import type { Registry } from '../core/index.js';

/**
 * `pgwake_http_request_duration_seconds{route,method,status_code}`. `route` is
 * the route's pattern (`/v2/dbs/:id`), never the raw URL, and unknown routes
 * share one value, so the label set stays bounded. Event streams (hijacked
 * replies) are not observed: their duration is a connection's life, not a request's.
 */
export function measureRequests(app: FastifyInstance, registry: Registry): void {
  const name = 'pgwake_http_request_duration_seconds';
  const histogram =
    (registry.getSingleMetric(name) as Histogram<'route' | 'method' | 'status_code'> | undefined) ??
    new Histogram({
      name,
      help: 'Control API request duration by route pattern, method and status code',
      labelNames: ['route', 'method', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    histogram.observe({ route, method: request.method, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
}
