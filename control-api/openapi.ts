import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';

/**
 * The OpenAPI document, built by @fastify/swagger from the routes' own schemas:
 * register before the routes, serve at /openapi.json once they are in.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    // Shared schemas keep their own names (Db, Tenant, Error) in components.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pgwake control API',
        version: '2',
        description:
          'Tenants, dbs and their lifecycle. Every route but sign-up takes `Authorization: Bearer <API_KEY>`. Errors are `{error: {code, message, details}}`. ' +
          'Mutating calls with a key accept `Idempotency-Key`: a retry with the same key and request gets the first response again (`Idempotent-Replayed: true`) for 24 h; the same key on another request is a 422. ' +
          'Requests are limited per API key and per client address: over a limit, 429 with `Retry-After`.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from POST /v2/accounts' } } },
      tags: [
        { name: 'accounts', description: 'Sign-up and the caller’s own account' },
        { name: 'api-keys', description: 'API keys: more keys, rotation, revocation' },
        { name: 'billing', description: 'Compute usage' },
        { name: 'tenants', description: 'Tenants and their Postgres login' },
        { name: 'dbs', description: 'Databases and their lifecycle' },
        { name: 'roles', description: 'Postgres roles of a db: password and oauth roles' },
        { name: 'access', description: 'Who may connect from where: allowlists, bans, TLS, connection limits' },
        { name: 'credentials', description: 'Database credentials (OAuth tokens) and the keys that verify them' },
        { name: 'events', description: 'Server-Sent Events' },
        { name: 'operations', description: 'Health and metrics' },
      ],
    },
  });
}

export async function openApiRoutes(app: FastifyInstance): Promise<void> {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/docs', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/openapi.json'));
}
