import type pg from 'pg';
import type { Coordinator } from '../coordinator/index.js';
import type { Queryable } from './catalog.js';

export interface CatalogEvent {
  id: number;
  account_id: string;
  tenant_id: string | null;
  db_id: string | null;
  type: string;
  data: Record<string, unknown>;
  created_at: string;
}

export interface NewEvent {
  account_id: string;
  tenant_id?: string | null;
  db_id?: string | null;
  type: string;
  data: Record<string, unknown>;
}

/** The append-only event log the SSE stream replays from `Last-Event-ID`. */
export class EventStore {
  constructor(private readonly pool: pg.Pool, private readonly coordinator: Coordinator) {}

  /** Appends inside the caller's transaction; call `announce` after it commits. */
  async append(q: Queryable, e: NewEvent): Promise<CatalogEvent> {
    const { rows } = await q.query<CatalogEvent>(
      'INSERT INTO events (account_id, tenant_id, db_id, type, data) VALUES ($1, $2, $3, $4, $5) RETURNING *',
      [e.account_id, e.tenant_id ?? null, e.db_id ?? null, e.type, JSON.stringify(e.data)],
    );
    return rows[0]!;
  }

  announce(e: CatalogEvent): void {
    this.coordinator.publishEventAppended({ accountId: e.account_id, eventId: e.id });
  }

  async since(accountId: string, afterId: number, limit = 500): Promise<CatalogEvent[]> {
    const { rows } = await this.pool.query<CatalogEvent>(
      'SELECT * FROM events WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3',
      [accountId, afterId, limit],
    );
    return rows;
  }

  async latestId(accountId: string): Promise<number> {
    const { rows } = await this.pool.query<{ id: number | null }>('SELECT max(id)::int8 AS id FROM events WHERE account_id = $1', [accountId]);
    return rows[0]?.id ?? 0;
  }
}
