import type { Logger, RoleContext } from '../core/index.js';
import type { ComputeDriver } from './compute-driver.js';
import type { ComputeController } from './controller.js';
import { HANDOFF_STAGES } from './handoff.js';

/** Finishes or rolls back a handoff left half-done (in the db's turn). */
export type RecoverHandoff = (dbId: string) => Promise<void>;

/** How often the catalog is compared with the writers that really run. */
export const RECONCILE_INTERVAL_MS = 30_000;

/**
 * Brings the catalog and the writers back in line: dbs left `creating` are
 * provisioned, `deleting` ones deleted, a db that says a writer runs while none
 * of ours does is `suspended` again, and a writer no row accounts for is
 * stopped. At start-up, also stops writers a previous pgwake process left running. Resolves once the quick fixes are done;
 * provisions and deletes go on in the db's queue.
 */
export async function reconcile(ctx: RoleContext, driver: ComputeDriver, controller: ComputeController, o: { startup: boolean; recoverHandoff?: RecoverHandoff }): Promise<void> {
  const log = ctx.logger.child({ component: 'reconcile' });
  const settles: Promise<void>[] = [];
  for (const db of await ctx.catalog.dbs.listLive()) {
    if (controller.busy(db.id)) continue;
    const logFailure = (err: Error) => log.warn({ err, db_id: db.id, state: db.state }, 'reconcile action failed');
    if (o.recoverHandoff && HANDOFF_STAGES.includes(db.scale_state) && !['creating', 'deleting'].includes(db.state)) {
      // No action runs for the db, so no handoff of ours does: it was left by a controller that is gone.
      settles.push(o.recoverHandoff(db.id).catch(logFailure));
      continue;
    }
    switch (db.state) {
      case 'creating':
        controller.provision(db.id).catch(logFailure);
        break;
      case 'deleting':
        controller.delete(db.id).catch(logFailure);
        break;
      case 'running':
        if (o.startup || !driver.describe(db.id).running) settles.push(controller.settle(db.id).catch(logFailure));
        break;
      case 'starting':
      case 'suspending':
        // Only ever seen inside an action; with none under way, one was cut short.
        settles.push(controller.settle(db.id).catch(logFailure));
        break;
      case 'suspended':
      case 'failed':
        if (o.startup || driver.describe(db.id).running) settles.push(controller.settle(db.id).catch(logFailure));
        break;
    }
  }
  await Promise.all(settles);
}

/** Runs `reconcile` every RECONCILE_INTERVAL_MS until stopped. */
export class PeriodicReconcile {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #run: Promise<void> = Promise.resolve();
  #log: Logger;

  constructor(
    private readonly ctx: RoleContext,
    private readonly driver: ComputeDriver,
    private readonly controller: ComputeController,
    private readonly intervalMs = RECONCILE_INTERVAL_MS,
    private readonly recoverHandoff?: RecoverHandoff,
  ) {
    this.#log = ctx.logger.child({ component: 'reconcile' });
  }

  start(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#run = reconcile(this.ctx, this.driver, this.controller, { startup: false, recoverHandoff: this.recoverHandoff })
        .catch((err: Error) => this.#log.warn({ err }, 'reconcile failed'))
        .finally(() => this.start());
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#run;
  }
}
