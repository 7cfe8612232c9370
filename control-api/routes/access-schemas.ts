import { Type, type Static } from '@sinclair/typebox';
import { Nullable, ResourceName, Timestamp } from '../schemas.js';

/** Schemas of who may connect from where and for how long: allowlists, bans, TLS, connection limits. */

const SetAt = Nullable({ ...Timestamp, description: 'When this was last set; null: never' });

export const NetworkRestrictionsSchema = Type.Object(
  {
    allowed_cidrs: Type.Array(Type.String(), { description: 'IPv4 and IPv6 CIDRs clients must connect from; empty: any address' }),
    updated_at: SetAt,
  },
  { additionalProperties: false },
);

export const PutNetworkRestrictionsBody = Type.Object(
  {
    allowed_cidrs: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      maxItems: 100,
      description: 'e.g. ["203.0.113.0/24", "2001:db8::/32", "::1"]; a bare address is one host; empty: any address',
    }),
  },
  { additionalProperties: false },
);
export type PutNetworkRestrictionsBody = Static<typeof PutNetworkRestrictionsBody>;

export const NetworkBanSchema = Type.Object(
  {
    address: Type.String(),
    scope: Type.Unsafe<'db' | 'tenant'>({ type: 'string', enum: ['db', 'tenant'], description: '`db`: failed logins to this db; `tenant`: to a db name of the tenant that does not exist' }),
    failures: Type.Integer({ description: 'Failed logins in the window that led to the ban' }),
    banned_at: Timestamp,
    banned_until: Timestamp,
  },
  { additionalProperties: false },
);
export const NetworkBanListSchema = Type.Object({ bans: Type.Array(NetworkBanSchema) }, { additionalProperties: false });
export const LiftedBansSchema = Type.Object({ lifted: Type.Array(NetworkBanSchema) }, { additionalProperties: false });

export const BanParams = Type.Object(
  { tenant: ResourceName('Tenant name'), db: ResourceName('Db name'), address: Type.String({ minLength: 1, maxLength: 64, description: 'The banned IPv4 or IPv6 address' }) },
  { additionalProperties: false },
);
export type BanParams = Static<typeof BanParams>;

export const SslEnforcementSchema = Type.Object(
  { require_ssl: Type.Boolean({ description: 'true: clients without TLS are refused (28000)' }), updated_at: SetAt },
  { additionalProperties: false },
);
export const PutSslEnforcementBody = Type.Object({ require_ssl: Type.Boolean() }, { additionalProperties: false });
export type PutSslEnforcementBody = Static<typeof PutSslEnforcementBody>;

const MaxConnections = Nullable(Type.Integer({ minimum: 1, maximum: 100_000, description: 'Client connections at once through the gateway (53300 above); null: no limit of its own' }));
const Seconds = (what: string) => Nullable(Type.Integer({ minimum: 0, maximum: 31_536_000, description: `${what}; 0: never; null: the deployment's default` }));

export const DbConnectionLimitsSchema = Type.Object(
  {
    max_connections: MaxConnections,
    idle_timeout_seconds: Seconds('A session with no traffic this long is ended (57P05)'),
    max_connection_life_seconds: Seconds('A session this old is ended (57P01)'),
    effective: Type.Object(
      { idle_timeout_seconds: Type.Integer(), max_connection_life_seconds: Type.Integer() },
      { additionalProperties: false, description: 'What applies now: the db’s own values, else the deployment’s (0: never)' },
    ),
    updated_at: SetAt,
  },
  { additionalProperties: false },
);
export const PutDbConnectionLimitsBody = Type.Object(
  {
    max_connections: Type.Optional(MaxConnections),
    idle_timeout_seconds: Type.Optional(Seconds('A session with no traffic this long is ended (57P05)')),
    max_connection_life_seconds: Type.Optional(Seconds('A session this old is ended (57P01)')),
  },
  { additionalProperties: false, description: 'The whole setting: a field left out is null (no limit of its own, or the default)' },
);
export type PutDbConnectionLimitsBody = Static<typeof PutDbConnectionLimitsBody>;

export const TenantConnectionLimitsSchema = Type.Object(
  { max_connections: Nullable(Type.Integer({ description: 'Client connections at once to all dbs of the tenant; null: no limit' })), updated_at: SetAt },
  { additionalProperties: false },
);
export const PutTenantConnectionLimitsBody = Type.Object({ max_connections: MaxConnections }, { additionalProperties: false });
export type PutTenantConnectionLimitsBody = Static<typeof PutTenantConnectionLimitsBody>;
