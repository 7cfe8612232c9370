import { isIP } from 'node:net';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { InvalidCidrs, type AccessRule, type NetworkBan, type RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { ApiError, notFound } from '../errors.js';
import { ownedDbByName, ownedTenant } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { TenantDbParams } from './db-schemas.js';
import { TenantParams } from './tenant-schemas.js';
import {
  BanParams,
  DbConnectionLimitsSchema,
  LiftedBansSchema,
  NetworkBanListSchema,
  NetworkRestrictionsSchema,
  PutDbConnectionLimitsBody,
  PutNetworkRestrictionsBody,
  PutSslEnforcementBody,
  PutTenantConnectionLimitsBody,
  SslEnforcementSchema,
  TenantConnectionLimitsSchema,
} from './access-schemas.js';

type TenantDbParams = Static<typeof TenantDbParams>;

const restrictionsView = (r: AccessRule) => ({ allowed_cidrs: r.allowed_cidrs ?? [], updated_at: r.updated_at });

export function banView(b: NetworkBan) {
  return { address: b.address, scope: b.db_id === null ? ('tenant' as const) : ('db' as const), failures: b.failures, banned_at: b.banned_at, banned_until: b.banned_until };
}

/**
 * Who may connect from where, and for how long (issue 6): per-db and per-tenant
 * CIDR allowlists, the bans failed logins lead to, TLS enforcement per db, and
 * connection limits. The gateway reads these at every login, before any
 * password check: a change applies to the next connection.
 */
export async function accessRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  const { catalog, config } = ctx;
  const rules = catalog.accessRules;

  const cidrsOf = async (given: string[]): Promise<string[]> => {
    try {
      return await rules.canonicalCidrs(given);
    } catch (err) {
      if (!(err instanceof InvalidCidrs)) throw err;
      const fields = err.problems.map((p) => ({ in: 'body', field: `allowed_cidrs.${p.index}`, problem: `"${p.value}" ${p.problem}` }));
      throw new ApiError(400, 'invalid_request', fields.map((f) => `${f.field}: ${f.problem}`).join('; '), { fields });
    }
  };

  // Network restrictions: per db and per tenant (a client must pass both when both are set).
  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db/network-restrictions',
    { schema: { tags: ['access'], summary: 'The addresses clients may connect to the db from', security: BEARER, params: TenantDbParams, response: { 200: NetworkRestrictionsSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      return restrictionsView(await rules.get(db.tenant_id, db.id));
    },
  );
  app.put<{ Params: TenantDbParams; Body: PutNetworkRestrictionsBody }>(
    '/v2/tenants/:tenant/dbs/:db/network-restrictions',
    {
      schema: {
        tags: ['access'],
        summary: 'Set the IPv4/IPv6 CIDRs clients may connect to the db from (others get 28000); [] allows any address',
        security: BEARER,
        params: TenantDbParams,
        body: PutNetworkRestrictionsBody,
        response: { 200: NetworkRestrictionsSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const cidrs = await cidrsOf(request.body.allowed_cidrs);
      request.log.info({ db_id: db.id, allowed_cidrs: cidrs.length }, 'db network restrictions set');
      return restrictionsView(await rules.set(db.tenant_id, db.id, { allowed_cidrs: cidrs }));
    },
  );
  app.get<{ Params: TenantParams }>(
    '/v2/tenants/:tenant/network-restrictions',
    { schema: { tags: ['access'], summary: 'The addresses clients may connect to any db of the tenant from', security: BEARER, params: TenantParams, response: { 200: NetworkRestrictionsSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      return restrictionsView(await rules.get(tenant.id, null));
    },
  );
  app.put<{ Params: TenantParams; Body: PutNetworkRestrictionsBody }>(
    '/v2/tenants/:tenant/network-restrictions',
    {
      schema: {
        tags: ['access'],
        summary: "Set the CIDRs clients may connect to every db of the tenant from (a db's own list applies as well); [] allows any address",
        security: BEARER,
        params: TenantParams,
        body: PutNetworkRestrictionsBody,
        response: { 200: NetworkRestrictionsSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      const cidrs = await cidrsOf(request.body.allowed_cidrs);
      request.log.info({ tenant_id: tenant.id, allowed_cidrs: cidrs.length }, 'tenant network restrictions set');
      return restrictionsView(await rules.set(tenant.id, null, { allowed_cidrs: cidrs }));
    },
  );

  // Bans.
  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db/network-bans',
    {
      schema: {
        tags: ['access'],
        summary: `Addresses banned from the db after ${config.banFailedLogins} failed logins within ${config.banWindowSeconds} s (for ${config.banSeconds} s)`,
        security: BEARER,
        params: TenantDbParams,
        response: { 200: NetworkBanListSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      return { bans: (await rules.bansFor(db.tenant_id, db.id)).map(banView) };
    },
  );
  app.delete<{ Params: BanParams }>(
    '/v2/tenants/:tenant/dbs/:db/network-bans/:address',
    {
      schema: {
        tags: ['access'],
        summary: 'Lift the bans that keep an address from the db (and forget its failed logins)',
        security: BEARER,
        params: BanParams,
        response: { 200: LiftedBansSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const address = request.params.address;
      if (isIP(address) === 0) {
        const problem = 'is not an IPv4 or IPv6 address';
        throw new ApiError(400, 'invalid_request', `address: ${problem}`, { fields: [{ in: 'params', field: 'address', problem }] });
      }
      const lifted = await rules.lift(db.tenant_id, db.id, address);
      if (lifted.length === 0) throw notFound(`ban of ${address} on db "${db.name}"`);
      request.log.info({ db_id: db.id, address }, 'network ban lifted');
      return { lifted: lifted.map(banView) };
    },
  );

  // TLS enforcement.
  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db/ssl-enforcement',
    { schema: { tags: ['access'], summary: 'Whether the db refuses clients without TLS', security: BEARER, params: TenantDbParams, response: { 200: SslEnforcementSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const r = await rules.get(db.tenant_id, db.id);
      return { require_ssl: r.require_ssl, updated_at: r.updated_at };
    },
  );
  app.put<{ Params: TenantDbParams; Body: PutSslEnforcementBody }>(
    '/v2/tenants/:tenant/dbs/:db/ssl-enforcement',
    {
      schema: {
        tags: ['access'],
        summary: 'Refuse (or accept again) clients of the db that do not use TLS',
        security: BEARER,
        params: TenantDbParams,
        body: PutSslEnforcementBody,
        response: { 200: SslEnforcementSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const r = await rules.set(db.tenant_id, db.id, { require_ssl: request.body.require_ssl });
      request.log.info({ db_id: db.id, require_ssl: r.require_ssl }, 'db TLS enforcement set');
      return { require_ssl: r.require_ssl, updated_at: r.updated_at };
    },
  );

  // Connection limits.
  const dbLimitsView = (r: AccessRule) => ({
    max_connections: r.max_connections,
    idle_timeout_seconds: r.idle_timeout_seconds,
    max_connection_life_seconds: r.max_connection_life_seconds,
    effective: {
      idle_timeout_seconds: r.idle_timeout_seconds ?? config.idleTimeoutSeconds,
      max_connection_life_seconds: r.max_connection_life_seconds ?? config.maxConnectionLifeSeconds,
    },
    updated_at: r.updated_at,
  });
  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db/connection-limits',
    { schema: { tags: ['access'], summary: "The db's connection limit, idle timeout and maximum connection life", security: BEARER, params: TenantDbParams, response: { 200: DbConnectionLimitsSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      return dbLimitsView(await rules.get(db.tenant_id, db.id));
    },
  );
  app.put<{ Params: TenantDbParams; Body: PutDbConnectionLimitsBody }>(
    '/v2/tenants/:tenant/dbs/:db/connection-limits',
    {
      schema: {
        tags: ['access'],
        summary: "Set the db's connection limit (53300 above it), idle timeout and maximum connection life; a field left out is null",
        security: BEARER,
        params: TenantDbParams,
        body: PutDbConnectionLimitsBody,
        response: { 200: DbConnectionLimitsSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const b = request.body;
      const r = await rules.set(db.tenant_id, db.id, {
        max_connections: b.max_connections ?? null,
        idle_timeout_seconds: b.idle_timeout_seconds ?? null,
        max_connection_life_seconds: b.max_connection_life_seconds ?? null,
      });
      request.log.info({ db_id: db.id, max_connections: r.max_connections, idle_timeout_seconds: r.idle_timeout_seconds, max_connection_life_seconds: r.max_connection_life_seconds }, 'db connection limits set');
      return dbLimitsView(r);
    },
  );
  app.get<{ Params: TenantParams }>(
    '/v2/tenants/:tenant/connection-limits',
    { schema: { tags: ['access'], summary: "The tenant's limit of connections to all its dbs together", security: BEARER, params: TenantParams, response: { 200: TenantConnectionLimitsSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      const r = await rules.get(tenant.id, null);
      return { max_connections: r.max_connections, updated_at: r.updated_at };
    },
  );
  app.put<{ Params: TenantParams; Body: PutTenantConnectionLimitsBody }>(
    '/v2/tenants/:tenant/connection-limits',
    {
      schema: {
        tags: ['access'],
        summary: "Set the tenant's limit of connections to all its dbs together (53300 above it); null: no limit",
        security: BEARER,
        params: TenantParams,
        body: PutTenantConnectionLimitsBody,
        response: { 200: TenantConnectionLimitsSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      const r = await rules.set(tenant.id, null, { max_connections: request.body.max_connections });
      request.log.info({ tenant_id: tenant.id, max_connections: r.max_connections }, 'tenant connection limit set');
      return { max_connections: r.max_connections, updated_at: r.updated_at };
    },
  );
}
