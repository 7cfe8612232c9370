import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Account, ApiKey, Catalog } from '../core/index.js';
import { ApiError } from './errors.js';
import type { KeyUseLog } from './key-use.js';

/** Who is calling: the account of the API key in `Authorization: Bearer …`. */
export interface Caller {
  account: Account;
  apiKey: ApiKey;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/** The authenticated caller of a request under `requireApiKey`. */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new ApiError(401, 'unauthorized', 'this route needs an API key: send Authorization: Bearer <API_KEY>');
  return request.caller;
}

/**
 * Adds an onRequest hook to the (encapsulated) instance: every route registered
 * in it needs a valid API key. Runs before the body is parsed, so an anonymous
 * caller learns nothing from validation errors.
 */
export function requireApiKey(app: FastifyInstance, catalog: Catalog, keyUse: KeyUseLog): void {
  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      reply.header('www-authenticate', 'Bearer');
      throw new ApiError(401, 'unauthorized', 'missing API key: send Authorization: Bearer <API_KEY>');
    }
    const found = await catalog.apiKeys.authenticate(match[1]!);
    if (!found) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"');
      throw new ApiError(401, 'unauthorized', 'invalid API key');
    }
    request.caller = found;
    keyUse.record(found.apiKey.id);
  });
}

export function decorateCaller(app: FastifyInstance): void {
  app.decorateRequest('caller', null);
}
