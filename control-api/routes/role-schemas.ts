import { Type, type Static } from '@sinclair/typebox';
import { Nullable, ResourceName, Timestamp } from '../schemas.js';

/** Schemas of the role routes. A password appears only in the answer that made or reset it. */

const RoleNameParam = Type.String({ minLength: 1, maxLength: 63, description: 'Role name' });

export const IdentitySchema = Type.Object(
  {
    claim: Type.Unsafe<'sub' | 'email'>({ type: 'string', enum: ['sub', 'email'], description: 'The token claim that must hold `value`' }),
    value: Type.String(),
    issuer: Nullable(Type.String({ description: 'Only tokens of this issuer; null: any trusted issuer' })),
  },
  { additionalProperties: false },
);

export const RoleSchema = Type.Object(
  {
    name: Type.String(),
    kind: Type.Unsafe<'password' | 'oauth'>({ type: 'string', enum: ['password', 'oauth'] }),
    identity: Nullable(IdentitySchema),
    db: Type.String({ description: 'Db name' }),
    db_id: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Role', title: 'Role', additionalProperties: false },
);

export const RoleListSchema = Type.Object({ roles: Type.Array(Type.Ref('Role')) }, { additionalProperties: false });

const secretFields = {
  password: Type.Optional(Type.String({ description: 'Password roles: the password, shown this once (only a SCRAM verifier is kept)' })),
  dsn_template: Type.Optional(Type.String({ description: 'Password roles: a connection string with the password in it' })),
};

export const RoleWithSecretSchema = Type.Object({ role: Type.Ref('Role'), ...secretFields }, { additionalProperties: false });

const IdentityInput = Type.Object(
  {
    sub: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: "The token's `sub` (subject) that may log in as the role" })),
    email: Type.Optional(Type.String({ minLength: 3, maxLength: 255, description: "Or the token's `email` (not if `email_verified` is false)" })),
    issuer: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Only tokens of this issuer (default: any trusted issuer)' })),
  },
  { additionalProperties: false, description: 'Exactly one of `sub` and `email`' },
);

export const CreateRoleBody = Type.Object(
  {
    name: Type.String({ maxLength: 255, description: 'Postgres role name (1–63 bytes): lowercase letters, digits, _ and $, not starting with a digit; not postgres, pg_*, pgwake_* or the tenant login' }),
    kind: Type.Unsafe<'password' | 'oauth'>({ type: 'string', enum: ['password', 'oauth'], description: '`password`: logs in with a password (SCRAM); `oauth`: with a token as its password, over TLS' }),
    identity: Type.Optional(IdentityInput),
  },
  { additionalProperties: false },
);
export type CreateRoleBody = Static<typeof CreateRoleBody>;

export const PatchRoleBody = Type.Object(
  {
    reset_password: Type.Optional(Type.Literal(true, { description: 'Password roles: a new password, returned once; the old one stops working' })),
    identity: Type.Optional(Nullable(IdentityInput)),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type PatchRoleBody = Static<typeof PatchRoleBody>;

export type IdentityInput = Static<typeof IdentityInput>;

export const RoleParams = Type.Object({ tenant: ResourceName('Tenant name'), db: ResourceName('Db name'), role: RoleNameParam }, { additionalProperties: false });
export type RoleParams = Static<typeof RoleParams>;
