import type { DbActivity, DbRecord, Logger, RoleContext } from '../core/index.js';
import type { ComputeDriver, ComputeStatus } from './compute-driver.js';
import type { ComputeController } from './controller.js';

/**
 * Whether gateways say the db is in use. An open transaction always counts.
 * In transaction pool mode an idle client holds no server connection, so only
 * checkouts count (DESIGN §3); in session mode a connected client does.
 */
export function isBusy(a: DbActivity | undefined, db: Pick<DbRecord, 'pool_mode'>): boolean {
  if (!a) return false;
  if (a.openTransactions > 0 || a.checkoutsInFlight > 0) return true;
  return db.pool_mode === 'session' && a.clientConnections > 0;
}

/**
 * Suspends running dbs that nobody used for their `suspend_timeout_seconds`,
 * counted from their last activity or their wake, whichever is later. Looks every
 * `idleCheckIntervalMs`, and once more right before suspending.
 */
export class IdleSuspender {
  /** When we last saw each running db busy, ms since epoch. */
  #lastBusyAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #tick: Promise<void> = Promise.resolve();
  #log: Logger;

  constructor(private readonly ctx: RoleContext, private readonly driver: ComputeDriver, private readonly controller: ComputeController) {
    this.#log = ctx.logger.child({ component: 'idle-suspender' });
  }

  start(): void {
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#tick;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.check()
        .catch((err: Error) => this.#log.warn({ err }, 'idle check failed'))
        .finally(() => this.#schedule());
    }, this.ctx.config.idleCheckIntervalMs);
  }

  /** One look at every running db. */
  async check(): Promise<void> {
    const running = this.driver.running();
    const runningIds = new Set(running.map((s) => s.dbId));
    for (const id of this.#lastBusyAt.keys()) if (!runningIds.has(id)) this.#lastBusyAt.delete(id);
    if (running.length === 0) return;
    const activity = await this.ctx.coordinator.activity();
    for (const status of running) {
      if (this.#stopped) return;
      if (this.controller.busy(status.dbId)) continue;
      const db = await this.ctx.catalog.dbs.byId(status.dbId);
      if (!db || db.state !== 'running') continue;
      if (!this.#idleLongEnough(db, status, activity.get(db.id))) continue;
      this.controller
        .suspend(db.id, 'idle', async (fresh) => {
          const now = this.driver.describe(fresh.id);
          return now.running && this.#idleLongEnough(fresh, now, (await this.ctx.coordinator.activity()).get(fresh.id));
        })
        .catch((err: Error) => this.#log.warn({ err, db_id: db.id }, 'idle suspend failed'));
    }
  }

  #idleLongEnough(db: DbRecord, status: ComputeStatus, a: DbActivity | undefined): boolean {
    const now = Date.now();
    if (isBusy(a, db)) {
      this.#lastBusyAt.set(db.id, now);
      return false;
    }
    const since = Math.max(status.startedAt ?? now, this.#lastBusyAt.get(db.id) ?? 0, a?.lastActivityAt ?? 0);
    return now - since >= db.suspend_timeout_seconds * 1000;
  }
}
