import type pg from 'pg';
import type { Coordinator } from '../coordinator/index.js';
import { randomId } from '../ids.js';
import type { DbRecord, DbState, PoolMode, ScaleState } from '../lifecycle.js';
import type { ProfileName } from '../profiles.js';
import { inTransaction } from './catalog.js';
import type { EventStore } from './events.js';

const SELECT_DB = `SELECT d.*, t.name AS tenant FROM dbs d JOIN tenants t ON t.id = d.tenant_id`;

/** The fields a write may change: everything but identity and timestamps. */
export type DbPatch = Partial<Omit<DbRecord, 'id' | 'account_id' | 'tenant_id' | 'tenant' | 'name' | 'created_at' | 'updated_at'>>;

export interface DbUpdateGuard {
  /** Write only if the db is in one of these states (a lost race leaves the row alone). */
  states?: readonly DbState[];
  /** Write only if `lease_control_epoch` still equals this (fencing: DESIGN §3). */
  epoch?: number;
  /** Write only if the db's handoff is in one of these stages. */
  scaleStates?: readonly ScaleState[];
}

export type PublicDb = Omit<DbRecord, 'compute_host' | 'compute_port' | 'compute_socket_path' | 'worker_id' | 'account_id' | 'tenant_id'>;

/** What describe and events show of a db: everything but where its compute listens and internal ids. */
export function publicDb(db: DbRecord): PublicDb {
  const { compute_host: _h, compute_port: _p, compute_socket_path: _s, worker_id: _w, account_id: _a, tenant_id: _t, ...rest } = db;
  return rest;
}

/** Dbs and their lifecycle fields. Every write appends an event and tells every role through the coordinator. */
export class DbStore {
  constructor(private readonly pool: pg.Pool, private readonly events: EventStore, private readonly coordinator: Coordinator) {}

  async create(input: { accountId: string; tenantId: string; name: string; size: ProfileName; suspendTimeoutSeconds: number; poolMode: PoolMode; poolSize: number | null }): Promise<DbRecord> {
    const id = randomId('db');
    const { db, event } = await inTransaction(this.pool, async (c) => {
      await c.query(
        `INSERT INTO dbs (id, account_id, tenant_id, name, state, size, current_profile, target_profile, suspend_timeout_seconds, pool_mode, pool_size)
         VALUES ($1, $2, $3, $4, 'creating', $5, $5, $5, $6, $7, $8)`,
        [id, input.accountId, input.tenantId, input.name, input.size, input.suspendTimeoutSeconds, input.poolMode, input.poolSize],
      );
      const db = (await c.query<DbRecord>(`${SELECT_DB} WHERE d.id = $1`, [id])).rows[0]!;
      const event = await this.events.append(c, { account_id: db.account_id, tenant_id: db.tenant_id, db_id: db.id, type: 'db.created', data: publicDb(db) });
      return { db, event };
    });
    this.events.announce(event);
    this.coordinator.publishDbChanged({ db });
    return db;
  }

  async byId(id: string): Promise<DbRecord | null> {
    const { rows } = await this.pool.query<DbRecord>(`${SELECT_DB} WHERE d.id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** A live (not deleted) db by its tenant and name. */
  async byName(tenantId: string, name: string): Promise<DbRecord | null> {
    const { rows } = await this.pool.query<DbRecord>(`${SELECT_DB} WHERE d.tenant_id = $1 AND d.name = $2 AND d.state <> 'deleted'`, [tenantId, name]);
    return rows[0] ?? null;
  }

  async listByTenant(tenantId: string): Promise<DbRecord[]> {
    const { rows } = await this.pool.query<DbRecord>(`${SELECT_DB} WHERE d.tenant_id = $1 AND d.state <> 'deleted' ORDER BY d.created_at, d.id`, [tenantId]);
    return rows;
  }

  /** Every db not yet deleted: the autoscaler's worklist. */
  async listLive(): Promise<DbRecord[]> {
    const { rows } = await this.pool.query<DbRecord>(`${SELECT_DB} WHERE d.state <> 'deleted' ORDER BY d.id`);
    return rows;
  }

  /**
   * Compare-and-set write of `patch`, with an event of `type` in the same transaction.
   * Returns the new row, or null when the guard no longer holds (someone else moved the db).
   */
  async update(id: string, patch: DbPatch, guard: DbUpdateGuard = {}, type = 'db.updated'): Promise<DbRecord | null> {
    const keys = Object.keys(patch) as (keyof DbPatch)[];
    const values: unknown[] = [id];
    const sets = keys.map((k) => {
      values.push(patch[k]);
      return `${k} = $${values.length}`;
    });
    sets.push('updated_at = now()');
    const where = ['id = $1'];
    if (guard.states) {
      values.push(guard.states);
      where.push(`state = ANY($${values.length})`);
    }
    if (guard.epoch !== undefined) {
      values.push(guard.epoch);
      where.push(`lease_control_epoch = $${values.length}`);
    }
    if (guard.scaleStates) {
      values.push(guard.scaleStates);
      where.push(`scale_state = ANY($${values.length})`);
    }
    const result = await inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query(`UPDATE dbs SET ${sets.join(', ')} WHERE ${where.join(' AND ')}`, values);
      if (rowCount === 0) return null;
      const db = (await c.query<DbRecord>(`${SELECT_DB} WHERE d.id = $1`, [id])).rows[0]!;
      const event = await this.events.append(c, { account_id: db.account_id, tenant_id: db.tenant_id, db_id: db.id, type, data: publicDb(db) });
      return { db, event };
    });
    if (!result) return null;
    this.events.announce(result.event);
    this.coordinator.publishDbChanged({ db: result.db });
    return result.db;
  }

  /** Moves a db from one of `from` to `to`, with `patch`; null if it was not in `from`. */
  transition(id: string, from: readonly DbState[], to: DbState, patch: DbPatch = {}, guard: Omit<DbUpdateGuard, 'states'> = {}): Promise<DbRecord | null> {
    return this.update(id, { ...patch, state: to }, { ...guard, states: from }, `db.${to}`);
  }
}
