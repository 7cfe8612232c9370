import type pg from 'pg';

/**
 * One db's compute time at one profile within a period. Intervals are the
 * `usage` rows the catalog keeps itself (migration 002: a trigger opens one
 * when a db's row becomes `running` and closes it when it leaves `running` or
 * changes profile); an interval still open counts up to now.
 */
export interface UsageLine {
  db_id: string;
  tenant: string | null;
  db: string | null;
  profile: string;
  compute_seconds: number;
}

/** Usage records: what the billing summary adds up. */
export class UsageStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Compute-seconds per db and profile of the account's intervals, clipped to `[from, to)`. */
  async summary(accountId: string, from: Date, to: Date): Promise<UsageLine[]> {
    const { rows } = await this.pool.query<UsageLine>(
      `SELECT db_id, max(tenant) AS tenant, max(db_name) AS db, profile,
              round(sum(greatest(0, extract(epoch FROM least(coalesce(ended_at, now()), $3) - greatest(started_at, $2))))::numeric, 3)::float8 AS compute_seconds
         FROM usage
        WHERE account_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2)
        GROUP BY db_id, profile
        ORDER BY db_id, profile`,
      [accountId, from, to],
    );
    return rows.filter((r) => r.compute_seconds > 0);
  }
}
