import type pg from 'pg';
import { randomId } from '../ids.js';
import { inTransaction } from './catalog.js';
import type { EventStore } from './events.js';

export interface TenantRecord {
  id: string;
  account_id: string;
  name: string;
  pg_user: string;
  password_sealed: string;
  scram_verifier: string;
  created_at: string;
  updated_at: string;
}

/** Tenants: each owns one Postgres login, unique across the deployment so the gateway can route by it. */
export class TenantStore {
  constructor(private readonly pool: pg.Pool, private readonly events: EventStore) {}

  async create(input: { accountId: string; name: string; pgUser: string; passwordSealed: string; scramVerifier: string }): Promise<TenantRecord> {
    const { tenant, event } = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<TenantRecord>(
        `INSERT INTO tenants (id, account_id, name, pg_user, password_sealed, scram_verifier)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [randomId('tn'), input.accountId, input.name, input.pgUser, input.passwordSealed, input.scramVerifier],
      );
      const tenant = rows[0]!;
      const event = await this.events.append(c, { account_id: tenant.account_id, tenant_id: tenant.id, type: 'tenant.created', data: { tenant: tenant.name, pg_user: tenant.pg_user } });
      return { tenant, event };
    });
    this.events.announce(event);
    return tenant;
  }

  async list(accountId: string): Promise<TenantRecord[]> {
    const { rows } = await this.pool.query<TenantRecord>('SELECT * FROM tenants WHERE account_id = $1 ORDER BY created_at, id', [accountId]);
    return rows;
  }

  async byName(accountId: string, name: string): Promise<TenantRecord | null> {
    const { rows } = await this.pool.query<TenantRecord>('SELECT * FROM tenants WHERE account_id = $1 AND name = $2', [accountId, name]);
    return rows[0] ?? null;
  }

  async byId(id: string): Promise<TenantRecord | null> {
    const { rows } = await this.pool.query<TenantRecord>('SELECT * FROM tenants WHERE id = $1', [id]);
    return rows[0] ?? null;
  }

  /** The gateway's routing lookup. */
  async byPgUser(pgUser: string): Promise<TenantRecord | null> {
    const { rows } = await this.pool.query<TenantRecord>('SELECT * FROM tenants WHERE pg_user = $1', [pgUser]);
    return rows[0] ?? null;
  }

  /** Removes the tenant row; its dbs must already be deleted. */
  async delete(tenant: TenantRecord): Promise<void> {
    const { event } = await inTransaction(this.pool, async (c) => {
      await c.query('DELETE FROM roles WHERE db_id IN (SELECT id FROM dbs WHERE tenant_id = $1)', [tenant.id]);
      await c.query("DELETE FROM dbs WHERE tenant_id = $1 AND state = 'deleted'", [tenant.id]);
      await c.query('DELETE FROM tenants WHERE id = $1', [tenant.id]);
      const event = await this.events.append(c, { account_id: tenant.account_id, tenant_id: tenant.id, type: 'tenant.deleted', data: { tenant: tenant.name } });
      return { event };
    });
    this.events.announce(event);
  }
}
