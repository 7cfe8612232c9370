import type { FastifyInstance } from 'fastify';
import type { ApiKey, RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { ApiError, notFound } from '../errors.js';
import { noBodyMeansEmpty } from '../optional-body.js';
import { BEARER, errorResponses } from '../schemas.js';
import {
  AccountParams,
  CreateApiKeyBody,
  NewApiKeySchema,
  RevokeBody,
  rotateBodySchema,
  RotatedApiKeySchema,
  type RotateBody,
} from './api-key-schemas.js';

const KEY = { $ref: 'ApiKey' };

export function apiKeyView(k: ApiKey): ApiKey {
  return { id: k.id, account_id: k.account_id, name: k.name, prefix: k.prefix, created_at: k.created_at, last_used_at: k.last_used_at, expires_at: k.expires_at, revoked_at: k.revoked_at, replaced_by: k.replaced_by };
}

/** API keys: more of them, the one in use, rotation with a grace period, revocation. */
export async function apiKeyRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  const { apiKeys } = ctx.catalog;

  app.post<{ Params: AccountParams; Body: CreateApiKeyBody }>(
    '/v2/accounts/:account/api-keys',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Create another API key for the account (the caller’s own account; any other is 404)',
        security: BEARER,
        params: AccountParams,
        body: CreateApiKeyBody,
        response: { 201: NewApiKeySchema, ...errorResponses(400, 401, 404) },
      },
      preValidation: noBodyMeansEmpty,
    },
    async (request, reply) => {
      const caller = callerOf(request);
      if (request.params.account !== caller.account.id) throw notFound(`account "${request.params.account}"`);
      const issued = await apiKeys.issue(caller.account.id, request.body.name ?? null);
      request.log.info({ key_prefix: issued.record.prefix }, 'API key created');
      return reply.status(201).send({ api_key: issued.key, key: apiKeyView(issued.record) });
    },
  );

  app.get(
    '/v2/api-keys/me',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'The API key making this call (last_used_at is written in batches, so it may lag a little)',
        security: BEARER,
        response: { 200: KEY, ...errorResponses(401) },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      return apiKeyView((await apiKeys.byId(caller.account.id, caller.apiKey.id)) ?? caller.apiKey);
    },
  );

  app.post<{ Body: RotateBody }>(
    '/v2/api-keys/rotate',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Replace the API key making this call: the new key is shown once; the old one keeps working for the grace period, then stops',
        security: BEARER,
        body: rotateBodySchema(ctx.config),
        response: { 201: RotatedApiKeySchema, ...errorResponses(400, 401, 409) },
      },
      preValidation: noBodyMeansEmpty,
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const grace = request.body.grace_seconds ?? ctx.config.apiKeyRotationGraceSeconds;
      const result = await apiKeys.rotate(caller.account.id, caller.apiKey.id, grace);
      switch (result.kind) {
        case 'gone':
          throw new ApiError(401, 'unauthorized', 'invalid API key');
        case 'already_rotated':
          throw new ApiError(409, 'already_rotated', `this key was rotated already; use its successor ${result.previous.replaced_by}`, {
            replaced_by: result.previous.replaced_by,
            expires_at: result.previous.expires_at,
          });
        case 'rotated':
          request.log.info({ key_prefix: caller.apiKey.prefix, new_key_prefix: result.issued.record.prefix, grace_seconds: grace }, 'API key rotated');
          return reply.status(201).send({ api_key: result.issued.key, key: apiKeyView(result.issued.record), previous: apiKeyView(result.previous) });
      }
    },
  );

  app.post<{ Body: RevokeBody }>(
    '/v2/api-keys/revoke',
    {
      schema: {
        tags: ['api-keys'],
        summary: "Revoke an API key of the account at once (default: the one making this call). The account's last lasting key cannot be revoked: 409",
        security: BEARER,
        body: RevokeBody,
        response: { 200: KEY, ...errorResponses(400, 401, 404, 409) },
      },
      preValidation: noBodyMeansEmpty,
    },
    async (request) => {
      const caller = callerOf(request);
      const keyId = request.body.key_id ?? caller.apiKey.id;
      const result = await apiKeys.revoke(caller.account.id, keyId);
      switch (result.kind) {
        case 'not_found':
          throw notFound(`API key "${keyId}"`);
        case 'last_key':
          throw new ApiError(409, 'last_api_key', "this is the account's last key that lasts; create another first (POST /v2/accounts/:account/api-keys), or delete the account", { key_id: keyId });
        case 'revoked':
          request.log.info({ key_prefix: result.key.prefix }, 'API key revoked');
          return apiKeyView(result.key);
      }
    },
  );
}
