import type { FastifyInstance } from 'fastify';
import type { RoleContext } from '../../core/index.js';
import type { AccountDeletions } from '../account-deletion.js';
import { callerOf } from '../caller.js';
import { ApiError, notFound } from '../errors.js';
import { BEARER, errorResponses } from '../schemas.js';
import { ContactBody, DeleteAccountBody, DeletingAccountSchema, ProfileSchema } from './account-schemas.js';
import { apiKeyView } from './api-keys.js';

/** The caller's own account (`/v2/account`): profile, contact details, deletion. */
export async function accountSelfRoutes(app: FastifyInstance, { ctx, deletions }: { ctx: RoleContext; deletions: AccountDeletions }): Promise<void> {
  const { catalog } = ctx;

  app.get(
    '/v2/account/profile',
    { schema: { tags: ['accounts'], summary: 'The account, its working API keys and how many tenants it has', security: BEARER, response: { 200: ProfileSchema, ...errorResponses(401) } } },
    async (request) => {
      const caller = callerOf(request);
      const [account, keys, tenants] = await Promise.all([catalog.accounts.byId(caller.account.id), catalog.apiKeys.listWorking(caller.account.id), catalog.tenants.list(caller.account.id)]);
      if (!account) throw new ApiError(401, 'unauthorized', 'invalid API key');
      return { account, api_keys: keys.map(apiKeyView), tenants: tenants.length };
    },
  );

  app.post<{ Body: ContactBody }>(
    '/v2/account/contact',
    {
      schema: {
        tags: ['accounts'],
        summary: "Change the account's contact details (name, email); fields left out stay as they are",
        security: BEARER,
        body: ContactBody,
        response: { 200: { $ref: 'Account' }, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const contact: { name?: string; email?: string | null } = {};
      if (request.body.name !== undefined) contact.name = request.body.name;
      if (request.body.email !== undefined) contact.email = request.body.email;
      const account = await catalog.accounts.updateContact(caller.account.id, contact);
      if (!account) throw new ApiError(401, 'unauthorized', 'invalid API key');
      request.log.info({ fields: Object.keys(contact) }, 'account contact changed');
      return account;
    },
  );

  app.post<{ Body: DeleteAccountBody }>(
    '/v2/account/delete',
    {
      schema: {
        tags: ['accounts'],
        summary:
          'Delete the account, asynchronously: its keys stop working at once; every tenant and db is deleted (dbs show `deleting`, then go). `confirm` must be the account id',
        security: BEARER,
        body: DeleteAccountBody,
        response: { 202: DeletingAccountSchema, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      if (request.body.confirm !== caller.account.id) {
        const problem = `must be this account's id (${caller.account.id})`;
        throw new ApiError(400, 'invalid_request', `confirm: ${problem}`, { fields: [{ in: 'body', field: 'confirm', problem }] });
      }
      // Keys stop first, in one transaction, so nothing new is made while the contents go.
      if (!(await catalog.accounts.markDeleted(caller.account.id))) throw notFound(`account "${caller.account.id}"`);
      const { tenants, dbs } = await deletions.begin(caller.account.id);
      return reply.status(202).send({ account: caller.account, state: 'deleting' as const, tenants, dbs });
    },
  );
}
