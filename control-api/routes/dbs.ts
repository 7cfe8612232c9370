import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { isUniqueViolation, publicDb, type DbPatch, type DbRecord, type DbState, type RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { dbLive } from '../db-live.js';
import { requestControl } from '../control-requests.js';
import { beginDbDeletion, type TenantDeletions } from '../deletion.js';
import { ApiError, conflict, notFound } from '../errors.js';
import { ownedDbById, ownedDbByName, ownedTenant } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { TenantParams } from './tenant-schemas.js';
import { scalePatch } from './scale.js';
import { createDbBodySchema, DbIdParams, DbListSchema, patchDbBodySchema, TenantDbParams, type CreateDbBody, type PatchDbBody } from './db-schemas.js';

type TenantDbParams = Static<typeof TenantDbParams>;
type DbIdParams = Static<typeof DbIdParams>;

const DB = { $ref: 'Db', description: 'The db (describe)' };
const DB_DESCRIBE = { $ref: 'DbDescribe', description: 'The db: its lifecycle fields and, under `live`, its activity and last wake and handoff' };

/** A db can be changed by PATCH in any state but on its way out. */
const PATCHABLE: readonly DbState[] = ['creating', 'suspended', 'starting', 'running', 'suspending', 'failed'];

/** Dbs of a tenant: create (provisioned, left suspended), list, describe, change, delete. */
export async function dbRoutes(app: FastifyInstance, { ctx, deletions }: { ctx: RoleContext; deletions: TenantDeletions }): Promise<void> {
  const { catalog } = ctx;

  app.post<{ Params: TenantParams; Body: CreateDbBody }>(
    '/v2/tenants/:tenant/dbs',
    {
      schema: {
        tags: ['dbs'],
        summary: 'Create a db: its data directory, role and database are made, and it is left suspended',
        security: BEARER,
        params: TenantParams,
        body: createDbBodySchema(ctx.config),
        response: { 201: DB, ...errorResponses(400, 401, 404, 409, 503, 504) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const tenant = await ownedTenant(catalog, caller, request.params.tenant);
      if (deletions.pending(tenant.id)) throw conflict(`tenant "${tenant.name}" is being deleted`);
      const body = request.body;
      let db: DbRecord;
      try {
        db = await catalog.dbs.create({
          accountId: caller.account.id,
          tenantId: tenant.id,
          name: body.name,
          size: body.size,
          suspendTimeoutSeconds: body.suspend_timeout_seconds,
          poolMode: body.pool_mode,
          poolSize: body.pool_size ?? null,
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`a db named "${body.name}" exists already in tenant "${tenant.name}"`, { field: 'name' });
        throw err;
      }
      request.log.info({ db_id: db.id, tenant_id: tenant.id }, 'db created; provisioning');
      await actOrExplain(ctx, 'provision', db);
      if (body.start_immediately) await actOrExplain(ctx, 'wake', db);
      return reply.status(201).send(await describe(ctx, db.id));
    },
  );

  app.get<{ Params: TenantParams }>(
    '/v2/tenants/:tenant/dbs',
    { schema: { tags: ['dbs'], summary: "List a tenant's dbs", security: BEARER, params: TenantParams, response: { 200: DbListSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const tenant = await ownedTenant(catalog, callerOf(request), request.params.tenant);
      return { dbs: (await catalog.dbs.listByTenant(tenant.id)).map(publicDb) };
    },
  );

  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db',
    { schema: { tags: ['dbs'], summary: 'Describe a db by tenant and name', security: BEARER, params: TenantDbParams, response: { 200: DB_DESCRIBE, ...errorResponses(400, 401, 404) } } },
    async (request) => withLive(ctx, await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db)),
  );

  app.get<{ Params: DbIdParams }>(
    '/v2/dbs/:id',
    { schema: { tags: ['dbs'], summary: 'Describe a db by id', security: BEARER, params: DbIdParams, response: { 200: DB_DESCRIBE, ...errorResponses(401, 404) } } },
    async (request) => withLive(ctx, await ownedDbById(catalog, callerOf(request), request.params.id)),
  );

  app.patch<{ Params: TenantDbParams; Body: PatchDbBody }>(
    '/v2/tenants/:tenant/dbs/:db',
    {
      schema: {
        tags: ['dbs'],
        summary: "Change a db's settings: suspend_timeout_seconds, pool_mode, pool_size; its size (a running db hands off to it) and autoscaling limits",
        security: BEARER,
        params: TenantDbParams,
        body: patchDbBodySchema(ctx.config),
        response: { 200: DB, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const patch: DbPatch = {};
      if (request.body.suspend_timeout_seconds !== undefined) patch.suspend_timeout_seconds = request.body.suspend_timeout_seconds;
      if (request.body.pool_mode !== undefined) patch.pool_mode = request.body.pool_mode;
      if (request.body.pool_size !== undefined) patch.pool_size = request.body.pool_size;
      const scale = scalePatch(db, request.body);
      Object.assign(patch, scale.patch);
      const updated = await catalog.dbs.update(db.id, patch, { states: scale.guard.states ?? PATCHABLE, scaleStates: scale.guard.scaleStates });
      if (updated) return publicDb(updated);
      const now = await catalog.dbs.byId(db.id);
      if (!now || now.state === 'deleted') throw notFound(`db "${db.name}"`);
      if (scale.guard.states && PATCHABLE.includes(now.state)) throw conflict(`db "${db.name}" changed meanwhile (now ${now.state}, scale_state ${now.scale_state}); try again`, { state: now.state, scale_state: now.scale_state });
      throw conflict(`db "${db.name}" is ${now.state}; it cannot be changed`, { state: now.state });
    },
  );

  app.delete<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db',
    {
      schema: {
        tags: ['dbs'],
        summary: 'Delete a db, asynchronously: it shows `deleting` until its compute is stopped and its data removed, then 404',
        security: BEARER,
        params: TenantDbParams,
        response: { 202: DB, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const db = await ownedDbByName(catalog, callerOf(request), request.params.tenant, request.params.db);
      const deleting = await beginDbDeletion(ctx, db);
      request.log.info({ db_id: db.id }, 'db deleting');
      return reply.status(202).send(publicDb(deleting));
    },
  );
}

/**
 * Runs a control action for a just-created db. If it fails the db exists all the
 * same, so the error carries its describe; with no autoscaler at all, a db still
 * `creating` is marked failed so that it does not look like work in progress.
 */
async function actOrExplain(ctx: RoleContext, action: 'provision' | 'wake', db: DbRecord): Promise<void> {
  try {
    await requestControl(ctx, action, db.id);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.code === 'autoscaler_unavailable') {
      await ctx.catalog.dbs.transition(db.id, ['creating'], 'failed', { failure_reason: 'no autoscaler was running to provision the db' });
    }
    const now = await ctx.catalog.dbs.byId(db.id);
    throw new ApiError(err.statusCode, err.code, err.message, { ...(err.details as object), db: now ? publicDb(now) : null });
  }
}

async function withLive(ctx: RoleContext, db: DbRecord) {
  return { ...publicDb(db), live: await dbLive(ctx, db.id) };
}

async function describe(ctx: RoleContext, id: string) {
  const db = await ctx.catalog.dbs.byId(id);
  if (!db) throw notFound(`db "${id}"`);
  return publicDb(db);
}
