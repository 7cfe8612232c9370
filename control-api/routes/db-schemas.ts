import { Type, type Static } from '@sinclair/typebox';
import { DB_STATES, POOL_MODES, PROFILE_NAMES, SCALE_STATES, type Config } from '../../core/index.js';
import { Nullable, ResourceName, Timestamp } from '../schemas.js';

/** Schemas of the db routes: the describe, and what create and patch accept. */

const StringEnum = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description ? { description } : {}) });

export const ProfileNameSchema = StringEnum(PROFILE_NAMES, 'Compute size profile');
export const PoolModeSchema = StringEnum(POOL_MODES, '`session`: one server connection per client; `transaction`: per transaction');
export const MAX_SUSPEND_TIMEOUT_SECONDS = 604_800;
export const PoolSizeSchema = Type.Integer({ minimum: 1, maximum: 1000, description: 'Server connections the gateway keeps per db in transaction mode; null: the profile default' });

/** The describe: every lifecycle field, null where unset, never missing (DESIGN §3). */
export const DbSchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String({ description: 'Tenant name' }),
    name: Type.String(),
    state: StringEnum(DB_STATES),
    size: ProfileNameSchema,
    current_scale: Type.Integer({ description: '0: no writer running; 1: a writer is running' }),
    target_scale: Type.Integer(),
    current_profile: ProfileNameSchema,
    target_profile: ProfileNameSchema,
    candidate_profile: Nullable(ProfileNameSchema),
    candidate_worker_id: Nullable(Type.String()),
    candidate_writer_term: Nullable(Type.Integer()),
    writer_term: Type.Integer(),
    scale_state: StringEnum(SCALE_STATES),
    freeze_new_checkouts: Type.Boolean(),
    freeze_generation: Type.Integer({ description: 'Bumped by every freeze of new checkouts' }),
    lease_control_epoch: Type.Integer(),
    autoscale_cooldown_until: Nullable(Timestamp),
    scale_phase_started_at: Nullable(Timestamp),
    scale_phase_deadline_at: Nullable(Timestamp),
    scale_failure_reason: Nullable(Type.String()),
    suspend_timeout_seconds: Type.Integer(),
    pool_mode: PoolModeSchema,
    pool_size: Nullable(Type.Integer()),
    handoff_timeout_action: StringEnum(['rollback', 'force'] as const),
    min_profile: Nullable({ ...ProfileNameSchema, description: 'Autoscaling lower bound; null: the db stays at its size' }),
    max_profile: Nullable({ ...ProfileNameSchema, description: 'Autoscaling upper bound; null: the db stays at its size' }),
    failure_reason: Nullable(Type.String()),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Db', title: 'Db', additionalProperties: false },
);

const NonNegative = (description: string) => Type.Integer({ minimum: 0, description });

/** Live figures: activity summed over every live gateway (reported each second), and the last wake and handoff from the db's events. */
export const DbLiveSchema = Type.Object(
  {
    client_connections: NonNegative('Client connections open at the gateways (waiting for a wake included)'),
    checkouts_in_flight: NonNegative('Server connections checked out now (transaction mode), or session connections in use'),
    checkouts_waiting: NonNegative('Checkouts queued for a server connection (pool full, or a freeze)'),
    open_transactions: NonNegative('Open transactions, idle in transaction included'),
    last_wake_seconds: Nullable(Type.Number({ description: 'From `starting` to `running` at the last wake; null: never woken' })),
    last_wake_at: Nullable(Timestamp),
    last_handoff: Nullable(
      Type.Object(
        {
          result: StringEnum(['succeeded', 'failed', 'in_progress'] as const),
          reason: Nullable(Type.String({ description: 'scale_failure_reason of a failed handoff' })),
          at: { ...Timestamp, description: 'When it ended (or began, while in progress)' },
          from_profile: Nullable(ProfileNameSchema),
          to_profile: Nullable(ProfileNameSchema),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** GET describe: the lifecycle fields, flat, and `live`. */
export const DbDescribeSchema = Type.Object({ ...DbSchema.properties, live: DbLiveSchema }, { $id: 'DbDescribe', title: 'DbDescribe', additionalProperties: false });

export const DbListSchema = Type.Object({ dbs: Type.Array(Type.Ref('Db')) });

export function suspendTimeoutSchema(config: Config, withDefault: boolean) {
  return Type.Integer({
    minimum: config.minSuspendTimeoutSeconds,
    maximum: MAX_SUSPEND_TIMEOUT_SECONDS,
    description: 'Idle seconds before the db suspends',
    ...(withDefault ? { default: config.defaultSuspendTimeoutSeconds } : {}),
  });
}

export function createDbBodySchema(config: Config) {
  return Type.Object(
    {
      name: ResourceName('Db name (also the Postgres database name)'),
      size: Type.Optional(Type.Unsafe<Static<typeof ProfileNameSchema>>({ ...ProfileNameSchema, default: 'L1' })),
      start_immediately: Type.Optional(Type.Boolean({ default: false, description: 'Start the writer now instead of on the first connection' })),
      suspend_timeout_seconds: Type.Optional(suspendTimeoutSchema(config, true)),
      pool_mode: Type.Optional(Type.Unsafe<Static<typeof PoolModeSchema>>({ ...PoolModeSchema, default: 'session' })),
      pool_size: Type.Optional(Nullable(PoolSizeSchema)),
    },
    { additionalProperties: false },
  );
}
/** The body after validation: ajv has filled in every default. */
export type CreateDbBody = Static<ReturnType<typeof createDbBodySchema>> & Required<Pick<Static<ReturnType<typeof createDbBodySchema>>, 'size' | 'start_immediately' | 'suspend_timeout_seconds' | 'pool_mode'>>;

export function patchDbBodySchema(config: Config) {
  return Type.Object(
    {
      suspend_timeout_seconds: Type.Optional(suspendTimeoutSchema(config, false)),
      pool_mode: Type.Optional(PoolModeSchema),
      pool_size: Type.Optional(Nullable(PoolSizeSchema)),
      // Profile changes (routes/scale.ts): a running db hands off to a new size.
      size: Type.Optional({ ...ProfileNameSchema, description: 'The profile to run at: a running db hands off to it (watch scale_state); a stopped one starts at it' }),
      min_profile: Type.Optional(Nullable({ ...ProfileNameSchema, description: 'Autoscaling lower bound (set with max_profile); null: autoscaling off' })),
      max_profile: Type.Optional(Nullable({ ...ProfileNameSchema, description: 'Autoscaling upper bound (set with min_profile); null: autoscaling off' })),
      handoff_timeout_action: Type.Optional(StringEnum(['rollback', 'force'] as const, 'At a passed drain deadline: `rollback` keeps the old writer; `force` ends the blocking sessions (57P01) and cuts over')),
    },
    { additionalProperties: false, minProperties: 1 },
  );
}
export type PatchDbBody = Static<ReturnType<typeof patchDbBodySchema>>;

export const TenantDbParams = Type.Object({ tenant: ResourceName('Tenant name'), db: ResourceName('Db name') }, { additionalProperties: false });
export const DbIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false });
