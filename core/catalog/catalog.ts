import pg from 'pg';
import type { Coordinator } from '../coordinator/index.js';
import { migrate } from './migrate.js';
import { AccountStore } from './accounts.js';
import { TenantStore } from './tenants.js';
import { DbStore } from './dbs.js';
import { EventStore } from './events.js';
import { ApiKeyStore } from './api-keys.js';
import { UsageStore } from './usage.js';
import { IdempotencyStore } from './idempotency.js';
import { ControlEpochStore } from './control-epochs.js';
import { RoleStore } from './roles.js';
import { SigningKeyStore } from './signing-keys.js';
import { AccessRuleStore } from './access-rules.js';

// Timestamps leave the catalog as ISO strings (what the API shows), bigints as numbers.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => new Date(v).toISOString());
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** The control database (DESIGN §2): one pool, one store per table family. */
export class Catalog {
  readonly accounts: AccountStore;
  readonly tenants: TenantStore;
  readonly dbs: DbStore;
  readonly events: EventStore;
  readonly apiKeys: ApiKeyStore;
  readonly usage: UsageStore;
  readonly idempotency: IdempotencyStore;
  readonly controlEpochs: ControlEpochStore;
  readonly roles: RoleStore;
  readonly signingKeys: SigningKeyStore;
  readonly accessRules: AccessRuleStore;

  private constructor(readonly pool: pg.Pool, coordinator: Coordinator) {
    this.events = new EventStore(pool, coordinator);
    this.accounts = new AccountStore(pool);
    this.tenants = new TenantStore(pool, this.events);
    this.dbs = new DbStore(pool, this.events, coordinator);
    this.apiKeys = new ApiKeyStore(pool);
    this.usage = new UsageStore(pool);
    this.idempotency = new IdempotencyStore(pool);
    this.controlEpochs = new ControlEpochStore(pool);
    this.roles = new RoleStore(pool, this.events);
    this.signingKeys = new SigningKeyStore(pool);
    this.accessRules = new AccessRuleStore(pool);
  }

  static async open(url: string, coordinator: Coordinator, options: { max?: number } = {}): Promise<Catalog> {
    const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, application_name: 'pgwake' });
    // An idle client that loses its server must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    await migrate(pool);
    return new Catalog(pool, coordinator);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Runs `fn` in one transaction. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export type Queryable = pg.Pool | pg.PoolClient;

export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code === '23505';
}
