import type { FastifyInstance } from 'fastify';
import { isUniqueViolation, publicDb, type RoleContext, type TenantRecord } from '../../core/index.js';
import { callerOf } from '../caller.js';
import type { TenantDeletions } from '../deletion.js';
import { conflict } from '../errors.js';
import { ownedTenant } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { newPgUser, newTenantPassword, tenantCredentials } from '../tenant-login.js';
import {
  CreatedTenantSchema,
  CreateTenantBody,
  CredentialsSchema,
  DeleteTenantQuery,
  DeletingTenantSchema,
  TenantListSchema,
  TenantParams,
} from './tenant-schemas.js';

const TENANT = { $ref: 'Tenant' };

export function tenantView(t: TenantRecord) {
  return { id: t.id, name: t.name, pg_user: t.pg_user, created_at: t.created_at, updated_at: t.updated_at };
}

/** Tenants: each owns one Postgres login (pg_user + password) shared by its dbs. */
export async function tenantRoutes(app: FastifyInstance, { ctx, deletions }: { ctx: RoleContext; deletions: TenantDeletions }): Promise<void> {
  const { catalog, config, secrets } = ctx;

  app.post<{ Body: CreateTenantBody }>(
    '/v2/tenants',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant and its Postgres login',
        security: BEARER,
        body: CreateTenantBody,
        response: { 201: CreatedTenantSchema, ...errorResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { password, sealed, verifier } = newTenantPassword(secrets);
      // pg_user carries a random suffix; a clash with another tenant's is unlikely, and retried.
      for (let attempt = 0; ; attempt++) {
        try {
          const tenant = await catalog.tenants.create({ accountId: caller.account.id, name: request.body.name, pgUser: newPgUser(request.body.name), passwordSealed: sealed, scramVerifier: verifier });
          request.log.info({ tenant_id: tenant.id }, 'tenant created');
          return reply.status(201).send({ tenant: tenantView(tenant), ...tenantCredentials(config, secrets, tenant, password) });
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          if ((err as { constraint?: string }).constraint !== 'tenants_pg_user_key' || attempt >= 3) {
            throw conflict(`a tenant named "${request.body.name}" exists already`, { field: 'name' });
          }
        }
      }
    },
  );

  app.get(
    '/v2/tenants',
    { schema: { tags: ['tenants'], summary: "List the account's tenants", security: BEARER, response: { 200: TenantListSchema, ...errorResponses(401) } } },
    async (request) => ({ tenants: (await catalog.tenants.list(callerOf(request).account.id)).map(tenantView) }),
  );

  app.get<{ Params: TenantParams }>(
    '/v2/tenants/:tenant',
    { schema: { tags: ['tenants'], summary: 'Describe a tenant', security: BEARER, params: TenantParams, response: { 200: TENANT, ...errorResponses(400, 401, 404) } } },
    async (request) => tenantView(await ownedTenant(catalog, callerOf(request), request.params.tenant)),
  );

  app.get<{ Params: TenantParams }>(
    '/v2/tenants/:tenant/credentials',
    {
      schema: {
        tags: ['tenants'],
        summary: "The tenant's Postgres login again: pg_user, pg_password, dsn_template",
        security: BEARER,
        params: TenantParams,
        response: { 200: CredentialsSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => tenantCredentials(config, secrets, await ownedTenant(catalog, callerOf(request), request.params.tenant)),
  );

  app.delete<{ Params: TenantParams; Querystring: DeleteTenantQuery }>(
    '/v2/tenants/:tenant',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Delete a tenant. With dbs: 409, unless `cascade=true`, which deletes them first (202; the tenant goes once they are gone)',
        security: BEARER,
        params: TenantParams,
        querystring: DeleteTenantQuery,
        response: { 202: DeletingTenantSchema, 204: { type: 'null', description: 'Deleted' }, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      const dbs = await catalog.dbs.listByTenant(tenant.id);
      if (dbs.length === 0) {
        await catalog.tenants.delete(tenant);
        request.log.info({ tenant_id: tenant.id }, 'tenant deleted');
        return reply.status(204).send();
      }
      if (request.query.cascade !== 'true') {
        throw conflict(`tenant "${tenant.name}" has ${dbs.length} db(s); delete them first or pass ?cascade=true`, { dbs: dbs.map((d) => d.name) });
      }
      const deleting = await deletions.begin(tenant, dbs);
      request.log.info({ tenant_id: tenant.id, dbs: dbs.length }, 'tenant deleting with its dbs');
      return reply.status(202).send({ tenant: tenantView(tenant), dbs: deleting.map(publicDb) });
    },
  );
}
