import { Type, type Static } from '@sinclair/typebox';
import type { Config } from '../../core/index.js';
import { Nullable, ResourceName, Timestamp } from '../schemas.js';

/** Schemas of database credentials (`POST /v2/credentials`) and the public keys that verify them. */

export function createCredentialBodySchema(config: Config) {
  return Type.Object(
    {
      tenant: ResourceName('Tenant name'),
      db: Type.Optional(ResourceName('Db name; leave out for a credential valid for the role in every db of the tenant that has it as an oauth role')),
      role: Type.String({ minLength: 1, maxLength: 63, description: 'An oauth role of the db' }),
      ttl_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: config.credentialTtlSeconds, description: `How long the credential is valid; default and most: ${config.credentialTtlSeconds}` })),
    },
    { additionalProperties: false },
  );
}
export type CreateCredentialBody = { tenant: string; db?: string; role: string; ttl_seconds?: number };

export const DbCredentialSchema = Type.Object(
  {
    token: Type.String({ description: 'A signed JWT: give it as the password (PGPASSWORD) over TLS' }),
    token_type: Type.Literal('jwt'),
    kid: Type.String({ description: 'The signing key, as in /.well-known/jwks.json' }),
    issuer: Type.String(),
    audience: Type.String(),
    expires_at: Timestamp,
    role: Type.String(),
    tenant: Type.String(),
    db: Nullable(Type.String({ description: 'Null: valid in every db of the tenant where the role is an oauth role' })),
    db_id: Nullable(Type.String()),
    dsn_template: Type.String({ description: 'postgres://<role>@<gateway>/<db>?sslmode=require&options=endpoint%3D<db-id>, the token as the password' }),
  },
  { additionalProperties: false },
);
export type DbCredential = Static<typeof DbCredentialSchema>;

export const JwksSchema = Type.Object(
  { keys: Type.Array(Type.Object({ kid: Type.String(), alg: Type.String(), use: Type.String(), kty: Type.String() }, { additionalProperties: true })) },
  { additionalProperties: false },
);
