import { Type, type Static } from '@sinclair/typebox';
import { ResourceName, Timestamp } from '../schemas.js';

/** Schemas of the tenant routes. */

export const TenantSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    pg_user: Type.String({ description: 'The Postgres login of every db of the tenant; unique across the deployment' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Tenant', title: 'Tenant', additionalProperties: false },
);

const credentialFields = {
  pg_user: Type.String(),
  pg_password: Type.String({ description: 'The password clients log in with at the gateway' }),
  dsn_template: Type.String({ description: 'postgres://<pg_user>:<pg_password>@<gateway-host>:<gateway-port>/<db-name>?sslmode=require' }),
};

export const CredentialsSchema = Type.Object(credentialFields, { $id: 'TenantCredentials', title: 'TenantCredentials', additionalProperties: false });

export const CreatedTenantSchema = Type.Object({ tenant: Type.Ref('Tenant'), ...credentialFields }, { additionalProperties: false });

export const TenantListSchema = Type.Object({ tenants: Type.Array(Type.Ref('Tenant')) });

export const CreateTenantBody = Type.Object({ name: ResourceName('Tenant name') }, { additionalProperties: false });
export type CreateTenantBody = Static<typeof CreateTenantBody>;

export const TenantParams = Type.Object({ tenant: ResourceName('Tenant name') }, { additionalProperties: false });
export type TenantParams = Static<typeof TenantParams>;

export const DeleteTenantQuery = Type.Object(
  {
    cascade: Type.Optional(
      Type.Unsafe<'true' | 'false'>({ type: 'string', enum: ['true', 'false'], description: '`true` deletes every db of the tenant first (asynchronously), then the tenant' }),
    ),
  },
  { additionalProperties: false },
);
export type DeleteTenantQuery = Static<typeof DeleteTenantQuery>;

export const DeletingTenantSchema = Type.Object({ tenant: Type.Ref('Tenant'), dbs: Type.Array(Type.Ref('Db')) }, { additionalProperties: false });
