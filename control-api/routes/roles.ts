import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import {
  createScramVerifier,
  formatScramVerifier,
  isUniqueViolation,
  randomSecret,
  type DbRecord,
  type RoleContext,
  type RoleIdentity,
  type RoleOwner,
  type RoleRecord,
} from '../../core/index.js';
import { callerOf } from '../caller.js';
import { requestControl } from '../control-requests.js';
import { ApiError, conflict, notFound } from '../errors.js';
import { ownedDbByName, ownedTenant } from '../owned.js';
import { roleNameProblem } from '../role-names.js';
import { BEARER, errorResponses } from '../schemas.js';
import { TenantDbParams } from './db-schemas.js';
import { CreateRoleBody, PatchRoleBody, RoleListSchema, RoleParams, RoleWithSecretSchema, type IdentityInput } from './role-schemas.js';
import type { Static } from '@sinclair/typebox';

type TenantDbParams = Static<typeof TenantDbParams>;

/** Enough for any application's set of logins; each role is applied at every start of the compute that lacks it. */
export const MAX_ROLES_PER_DB = 100;

export function roleView(role: RoleRecord, db: DbRecord) {
  return {
    name: role.name,
    kind: role.kind,
    identity: role.identity === null || role.identity_claim === null ? null : { claim: role.identity_claim, value: role.identity, issuer: role.identity_issuer },
    db: db.name,
    db_id: db.id,
    created_at: role.created_at,
    updated_at: role.updated_at,
  };
}

/**
 * Roles of a db besides the tenant's login: `password` roles (SCRAM at the gateway;
 * the password is shown once) and `oauth` roles (a token as the password). Each
 * change is applied on the db's compute when it runs (and at its next start when
 * it does not); a deleted role is refused by the gateway from the delete on, and
 * its sessions on a running compute are ended before the call returns.
 */
export async function roleRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  const { catalog } = ctx;

  const load = async (caller: ReturnType<typeof callerOf>, params: TenantDbParams) => {
    const tenant = await ownedTenant(catalog, caller, params.tenant);
    const db = await ownedDbByName(catalog, caller, params.tenant, params.db);
    return { tenant, db, owner: { accountId: caller.account.id, tenantId: tenant.id } satisfies RoleOwner };
  };
  const loadRole = async (caller: ReturnType<typeof callerOf>, params: RoleParams) => {
    const found = await load(caller, params);
    const role = await catalog.roles.byName(found.db.id, params.role);
    if (!role) throw notFound(`role "${params.role}" in db "${params.db}"`);
    return { ...found, role };
  };

  app.get<{ Params: TenantDbParams }>(
    '/v2/tenants/:tenant/dbs/:db/roles',
    { schema: { tags: ['roles'], summary: "List a db's roles (the tenant's login not included)", security: BEARER, params: TenantDbParams, response: { 200: RoleListSchema, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const { db } = await load(callerOf(request), request.params);
      return { roles: (await catalog.roles.list(db.id)).map((r) => roleView(r, db)) };
    },
  );

  app.post<{ Params: TenantDbParams; Body: CreateRoleBody }>(
    '/v2/tenants/:tenant/dbs/:db/roles',
    {
      schema: {
        tags: ['roles'],
        summary: 'Create a role: a password role answers with its password (this once); an oauth role logs in with a token from POST /v2/credentials or a trusted issuer',
        security: BEARER,
        params: TenantDbParams,
        body: CreateRoleBody,
        response: { 201: RoleWithSecretSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const { tenant, db, owner } = await load(callerOf(request), request.params);
      const body = request.body;
      const problem = roleNameProblem(body.name, tenant.pg_user);
      if (problem) throw invalidField('name', problem);
      if (body.kind === 'password' && body.identity) throw invalidField('identity', 'only oauth roles are bound to an identity');
      const identity = body.identity ? identityOf(body.identity) : null;
      if (db.state === 'deleting') throw conflict(`db "${db.name}" is being deleted`, { state: db.state });
      if ((await catalog.roles.list(db.id)).length >= MAX_ROLES_PER_DB) throw conflict(`db "${db.name}" has ${MAX_ROLES_PER_DB} roles, the most it may have`, { limit: MAX_ROLES_PER_DB });
      const password = body.kind === 'password' ? randomSecret() : null;
      let role: RoleRecord;
      try {
        role = await catalog.roles.create(owner, {
          dbId: db.id,
          name: body.name,
          kind: body.kind,
          scramVerifier: password === null ? null : formatScramVerifier(createScramVerifier(password)),
          identity,
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`a role named "${body.name}" exists already in db "${db.name}"`, { field: 'name' });
        throw err;
      }
      request.log.info({ db_id: db.id, role: role.name, kind: role.kind }, 'role created');
      await applyOnCompute(ctx, db, request.log);
      return reply.status(201).send(withSecret(ctx, db, role, password));
    },
  );

  app.get<{ Params: RoleParams }>(
    '/v2/tenants/:tenant/dbs/:db/roles/:role',
    { schema: { tags: ['roles'], summary: 'Describe a role', security: BEARER, params: RoleParams, response: { 200: { $ref: 'Role' }, ...errorResponses(400, 401, 404) } } },
    async (request) => {
      const { db, role } = await loadRole(callerOf(request), request.params);
      return roleView(role, db);
    },
  );

  app.patch<{ Params: RoleParams; Body: PatchRoleBody }>(
    '/v2/tenants/:tenant/dbs/:db/roles/:role',
    {
      schema: {
        tags: ['roles'],
        summary: "Reset a password role's password (returned this once), or change an oauth role's identity",
        security: BEARER,
        params: RoleParams,
        body: PatchRoleBody,
        response: { 200: RoleWithSecretSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const { db, role, owner } = await loadRole(callerOf(request), request.params);
      const body = request.body;
      if (body.reset_password && role.kind !== 'password') throw conflict(`role "${role.name}" is an oauth role: it has no password`, { kind: role.kind });
      if (body.identity !== undefined && role.kind !== 'oauth') throw conflict(`role "${role.name}" is a password role: only oauth roles are bound to an identity`, { kind: role.kind });
      const identity = body.identity === undefined ? undefined : body.identity === null ? null : identityOf(body.identity);
      const password = body.reset_password ? randomSecret() : null;
      const updated = await catalog.roles.update(owner, role.id, {
        ...(password === null ? {} : { scramVerifier: formatScramVerifier(createScramVerifier(password)) }),
        ...(identity === undefined ? {} : { identity }),
      });
      if (!updated) throw notFound(`role "${role.name}" in db "${db.name}"`);
      request.log.info({ db_id: db.id, role: role.name, password_reset: password !== null, identity_changed: identity !== undefined }, 'role changed');
      return withSecret(ctx, db, updated, password);
    },
  );

  app.delete<{ Params: RoleParams }>(
    '/v2/tenants/:tenant/dbs/:db/roles/:role',
    {
      schema: {
        tags: ['roles'],
        summary: 'Delete a role: the gateway refuses it from now on; on a running compute its sessions end and the role is dropped before this answers (what it owned passes to the tenant login)',
        security: BEARER,
        params: RoleParams,
        response: { 204: { type: 'null', description: 'Deleted' }, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { db, role, owner } = await loadRole(callerOf(request), request.params);
      if (!(await catalog.roles.delete(owner, role))) throw notFound(`role "${role.name}" in db "${db.name}"`);
      request.log.info({ db_id: db.id, role: role.name }, 'role deleted');
      await applyOnCompute(ctx, db, request.log);
      return reply.status(204).send();
    },
  );
}

/**
 * Asks the autoscaler to apply the db's roles on its compute and waits: a running
 * compute has them (or is rid of them) when the call answers. If that fails, the
 * catalog holds the change all the same, and the next start or change applies it.
 */
async function applyOnCompute(ctx: RoleContext, db: DbRecord, log: FastifyBaseLogger): Promise<void> {
  try {
    await requestControl(ctx, 'sync_roles', db.id);
  } catch (err) {
    log.warn({ db_id: db.id, err: (err as Error).message }, 'roles not applied on the compute now; the next start or role change applies them');
  }
}

function withSecret(ctx: RoleContext, db: DbRecord, role: RoleRecord, password: string | null) {
  const view = { role: roleView(role, db) };
  if (password === null) return view;
  const { gatewayHost, gatewayPort } = ctx.config;
  // The endpoint option routes the role: unlike the tenant's login, its name is only unique within its db.
  const dsn = `postgres://${role.name}:${encodeURIComponent(password)}@${gatewayHost}:${gatewayPort}/${db.name}?sslmode=require&options=${encodeURIComponent(`endpoint=${db.id}`)}`;
  return { ...view, password, dsn_template: dsn };
}

function identityOf(input: IdentityInput): RoleIdentity {
  if ((input.sub === undefined) === (input.email === undefined)) throw invalidField('identity', 'set exactly one of sub and email');
  if (input.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(input.email)) throw invalidField('identity.email', 'is not an email address');
  return input.sub !== undefined ? { claim: 'sub', value: input.sub, issuer: input.issuer ?? null } : { claim: 'email', value: input.email!.toLowerCase(), issuer: input.issuer ?? null };
}

function invalidField(field: string, problem: string): ApiError {
  return new ApiError(400, 'invalid_request', `${field}: ${problem}`, { fields: [{ in: 'body', field, problem }] });
}
