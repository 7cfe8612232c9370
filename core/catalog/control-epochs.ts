import type pg from 'pg';

/**
 * Fencing epochs kept by the catalog, the resource they fence. A coordinator
 * lease says who acts; the epoch taken here when it is won is what that holder
 * writes into `dbs.lease_control_epoch`, and it never repeats, not even after
 * every process restarted (an in-process coordinator starts counting again).
 */
export class ControlEpochStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The next epoch for `name`: greater than any handed out before. */
  async next(name: string): Promise<number> {
    const { rows } = await this.pool.query<{ epoch: number }>(
      `INSERT INTO control_epochs (name, epoch)
         VALUES ($1, 1 + coalesce((SELECT max(lease_control_epoch) FROM dbs), 0))
       ON CONFLICT (name) DO UPDATE SET epoch = control_epochs.epoch + 1
       RETURNING epoch`,
      [name],
    );
    return rows[0]!.epoch;
  }
}
