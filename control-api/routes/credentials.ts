import type { FastifyInstance } from 'fastify';
import type { RoleContext, RoleRecord } from '../../core/index.js';
import { callerOf } from '../caller.js';
import type { CredentialSigner } from '../credential-signer.js';
import { conflict, notFound } from '../errors.js';
import { ownedDbByName, ownedTenant } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { createCredentialBodySchema, DbCredentialSchema, JwksSchema, type CreateCredentialBody, type DbCredential } from './credential-schemas.js';

/**
 * Claims of a database credential besides the registered ones. The gateway reads
 * them; external issuers name the role in a claim of their own choosing.
 */
export const CREDENTIAL_CLAIMS = { role: 'pgwake_role', db: 'pgwake_db', tenant: 'pgwake_tenant' } as const;

/**
 * `POST /v2/credentials`: a short-lived JWT that logs one oauth role in at the
 * gateway, for one db or for every db of the tenant that has the role. Signed
 * with the catalog's signing key (rotated by age; see CredentialSigner).
 */
export async function credentialRoutes(app: FastifyInstance, { ctx, signer }: { ctx: RoleContext; signer: CredentialSigner }): Promise<void> {
  const { catalog, config } = ctx;

  app.post<{ Body: CreateCredentialBody }>(
    '/v2/credentials',
    {
      schema: {
        tags: ['credentials'],
        summary: 'Issue a database credential: a signed JWT, given as the password of an oauth role (over TLS)',
        security: BEARER,
        body: createCredentialBodySchema(config),
        response: { 201: DbCredentialSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const body = request.body;
      const tenant = await ownedTenant(catalog, caller, body.tenant);
      let role: RoleRecord;
      let db: { id: string; name: string } | null = null;
      if (body.db !== undefined) {
        const found = await ownedDbByName(catalog, caller, body.tenant, body.db);
        const r = await catalog.roles.byName(found.id, body.role);
        if (!r) throw notFound(`role "${body.role}" in db "${body.db}"`);
        role = r;
        db = { id: found.id, name: found.name };
      } else {
        const roles = await catalog.roles.oauthRolesInTenant(tenant.id, body.role);
        if (roles.length === 0) throw notFound(`oauth role "${body.role}" in any db of tenant "${body.tenant}"`);
        role = roles[0]!;
      }
      if (role.kind !== 'oauth') throw conflict(`role "${role.name}" is a password role; credentials are for oauth roles`, { kind: role.kind });
      const ttl = body.ttl_seconds ?? config.credentialTtlSeconds;
      const claims: Record<string, unknown> = { [CREDENTIAL_CLAIMS.role]: role.name, ...(db ? { [CREDENTIAL_CLAIMS.db]: db.id } : { [CREDENTIAL_CLAIMS.tenant]: tenant.id }) };
      // The role's identity goes in too, so the credential is what a trusted issuer would give that person.
      if (role.identity_claim === 'email') Object.assign(claims, { email: role.identity, email_verified: true });
      const subject = role.identity_claim === 'sub' && role.identity ? role.identity : `${db ? db.id : tenant.id}:${role.name}`;
      const signed = await signer.sign(claims, subject, ttl);
      request.log.info({ tenant_id: tenant.id, db_id: db?.id ?? null, role: role.name, kid: signed.kid, ttl_seconds: ttl }, 'database credential issued');
      const answer: DbCredential = {
        token: signed.token,
        token_type: 'jwt',
        kid: signed.kid,
        issuer: config.credentialIssuer,
        audience: config.credentialAudience,
        expires_at: signed.expiresAt.toISOString(),
        role: role.name,
        tenant: tenant.name,
        db: db?.name ?? null,
        db_id: db?.id ?? null,
        dsn_template: `postgres://${role.name}@${config.gatewayHost}:${config.gatewayPort}/${db?.name ?? '<db-name>'}?sslmode=require&options=${encodeURIComponent(`endpoint=${db?.id ?? '<db-id>'}`)}`,
      };
      return reply.status(201).send(answer);
    },
  );
}

/** The public keys of the credentials, for the gateway's peers and anyone verifying a token (no API key). */
export async function jwksRoutes(app: FastifyInstance, { signer }: { signer: CredentialSigner }): Promise<void> {
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['credentials'],
        summary: 'The keys that verify database credentials (JWKS): the signing key, and replaced keys until their last token expired',
        response: { 200: JwksSchema },
      },
    },
    async (_request, reply) => {
      // Short: a new key appears at a rotation, and verifiers that cache should see it soon.
      reply.header('cache-control', 'public, max-age=60');
      return signer.jwks();
    },
  );
}
