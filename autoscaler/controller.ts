import { PROFILES, type ControlRequest, type DbPatch, type DbRecord, type DbState, type Logger, type RoleContext, INTERNAL_SUPERUSER } from '../core/index.js';
import { NO_ROUTE, routePatchOf, type ComputeDriver, type ComputeExit, type ComputeSpec } from './compute-driver.js';
import { DbQueue } from './db-queue.js';
import type { AutoscalerMetrics, SuspendReason } from './metrics.js';
import { ComputeRoleSync } from './role-sync.js';
import { createTenantDatabase } from './tenant-database.js';

/** A db with no writer: no route, nothing wanted on. */
const OFF: DbPatch = { current_scale: 0, target_scale: 0, ...NO_ROUTE };

/** Reasons a db is `failed`, as `failure_reason` says them. */
export const FAILURE = {
  provision: 'provision_failed',
  start: 'compute_start_failed',
  exited: 'compute_exited',
} as const;

/** Where a control action can be held (fault injection for tests): the row already says `starting`/`suspending`. */
export type ControlPoint = 'wake:starting' | 'suspend:suspending';
export interface ControlHooks {
  at(point: ControlPoint, dbId: string): void | Promise<void>;
}

/** The db left the state this action read it in (another actor moved it): the action stops there. */
export class DbMovedError extends Error {}

/**
 * Acts on dbs: provision, wake, suspend, delete, and what follows a writer's
 * crash. Every action on one db runs after the previous one finished (DbQueue),
 * so a wake that arrives mid-suspend waits for it and then starts the db, and
 * fifty wakes make one start. State changes are compare-and-set on the state
 * read, so a db the control API moved meanwhile is left alone.
 */
export class ComputeController {
  #queue = new DbQueue();
  #closing = false;
  #log: Logger;

  /** The db's roles on its compute (role-sync.ts): at every start, after a provision, and on request. */
  readonly #roles: ComputeRoleSync;

  /** `epoch`: the acting autoscaler's fencing epoch; every state write is a compare-and-set on the one read (DESIGN §3). */
  constructor(private readonly ctx: RoleContext, private readonly driver: ComputeDriver, private readonly metrics: AutoscalerMetrics, private readonly epoch: () => number, private readonly hooks?: ControlHooks) {
    this.#log = ctx.logger.child({ component: 'autoscaler' });
    this.#roles = new ComputeRoleSync(ctx, driver, (dbId, key, fn) => this.exclusive(dbId, key, fn), this.#log);
  }

  /** The coordinator's control-request handler. */
  handle(req: ControlRequest): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('the autoscaler is stopping'));
    switch (req.action) {
      case 'provision':
        return this.provision(req.dbId);
      case 'wake':
        return this.wake(req.dbId);
      case 'suspend':
        return this.suspend(req.dbId, 'request');
      case 'delete':
        return this.delete(req.dbId);
      case 'sync_roles':
        return this.#roles.request(req.dbId);
    }
  }

  /** Something is running or queued for the db. */
  busy(dbId: string): boolean {
    return this.#queue.busy(dbId);
  }

  /** Runs `fn` in the db's turn, after every action queued before it (a handoff, its recovery). */
  exclusive<T>(dbId: string, key: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new Error('the autoscaler is stopping'));
    return this.#queue.run(dbId, key, fn);
  }

  provision(dbId: string): Promise<void> {
    return this.#queue.run(dbId, 'provision', async () => {
      await this.#provisioned(await this.#load(dbId));
    });
  }

  async wake(dbId: string): Promise<void> {
    // Already running, nothing queued: answer without waiting on anything.
    const status = this.driver.describe(dbId);
    if (status.running && !this.#queue.busy(dbId)) {
      const db = await this.ctx.catalog.dbs.byId(dbId);
      if (db?.state === 'running' && db.compute_port === status.endpoint?.port) return;
    }
    return this.#queue.run(dbId, 'wake', () => this.#wake(dbId));
  }

  /** `stillIdle` is asked right before the suspend, inside the db's turn: activity may have come since it was queued. */
  suspend(dbId: string, reason: SuspendReason, stillIdle?: (db: DbRecord) => Promise<boolean>): Promise<void> {
    return this.#queue.run(dbId, `suspend:${reason}`, () => this.#suspend(dbId, reason, stillIdle));
  }

  delete(dbId: string): Promise<void> {
    return this.#queue.run(dbId, 'delete', () => this.#delete(dbId));
  }

  /** A writer ended on its own: the db says so, and the next wake starts it again. */
  computeExited(exit: ComputeExit): Promise<void> {
    this.metrics.computeExits.inc();
    this.#log.warn({ db_id: exit.dbId, worker_id: exit.workerId, code: exit.code, last_log: exit.lastLog }, 'compute exited unexpectedly');
    return this.#queue.run(exit.dbId, `exited:${exit.workerId}`, async () => {
      if (this.driver.describe(exit.dbId).running) return; // a newer writer already serves it
      const db = await this.ctx.catalog.dbs.byId(exit.dbId);
      if (!db || !['starting', 'running', 'suspending'].includes(db.state) || db.worker_id !== exit.workerId) return;
      await this.#move(db, 'failed', { ...OFF, failure_reason: FAILURE.exited });
    });
  }

  /**
   * Makes the row and the writer agree when no action is under way: after a
   * restart, or if a writer vanished without an exit we saw. A db whose row says
   * a writer runs (or is half-way starting or stopping) without a writer of ours
   * is `suspended` again; a writer the row does not account for is stopped, one a
   * dead pgwake left behind included.
   */
  settle(dbId: string): Promise<void> {
    return this.#queue.run(dbId, 'settle', async () => {
      const db = await this.ctx.catalog.dbs.byId(dbId);
      if (!db || ['creating', 'deleting', 'deleted'].includes(db.state)) return;
      const status = this.driver.describe(dbId);
      if (db.state === 'running' && status.running && db.compute_port === status.endpoint?.port) return;
      await this.driver.stop(dbId);
      if (['starting', 'running', 'suspending'].includes(db.state)) {
        await this.#move(db, 'suspended', OFF);
        this.#log.info({ db_id: dbId, was: db.state }, 'db had no writer of ours: marked suspended');
      }
    });
  }

  /** Stops taking actions, lets queued ones finish, then suspends every running writer (fast shutdown) so a restart finds them. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    await this.#queue.drain();
    await Promise.allSettled(this.driver.running().map((s) => this.suspend(s.dbId, 'shutdown')));
    await this.#queue.drain();
  }

  async #wake(dbId: string): Promise<void> {
    let db = await this.#load(dbId);
    switch (db.state) {
      case 'deleting':
      case 'deleted':
        throw new Error(`db ${dbId} is being deleted`);
      case 'creating':
        db = await this.#provisioned(db);
        break;
      case 'running': {
        const status = this.driver.describe(dbId);
        if (status.running && db.compute_port === status.endpoint?.port) return;
        // The row says running but no writer of ours serves it: its writer is gone.
        await this.driver.stop(dbId);
        db = await this.#move(db, 'failed', { ...OFF, failure_reason: FAILURE.exited });
        break;
      }
      case 'starting':
      case 'suspending':
        // Left half-done by an action that failed midway; the queue says none is running now.
        await this.driver.stop(dbId);
        db = await this.#move(db, 'suspended', OFF);
        break;
      case 'failed':
        if (!(await this.driver.isProvisioned(dbId))) db = await this.#provisioned(db);
        break;
      case 'suspended':
        break;
    }
    // A profile asked for while no writer ran (a PATCH of size) is simply the one it starts at.
    const profile = db.scale_state === 'STABLE' ? db.target_profile : db.current_profile;
    db = await this.#move(db, 'starting', { target_scale: 1, failure_reason: null, current_profile: profile });
    const log = this.#log.child({ db_id: dbId });
    const t0 = performance.now();
    let endpoint;
    try {
      endpoint = await this.driver.start(this.#spec(db));
      await this.hooks?.at('wake:starting', dbId); // a writer runs, the row still says starting
    } catch (err) {
      this.metrics.computeStarts.inc({ result: 'failed' });
      log.error({ err }, 'compute did not start');
      await this.#move(db, 'failed', { ...OFF, failure_reason: FAILURE.start }).catch(() => undefined);
      throw new Error(`compute for db ${dbId} did not start: ${(err as Error).message.split('\n')[0]}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    this.metrics.computeStarts.inc({ result: 'ok' });
    this.metrics.computeStartSeconds.observe(seconds);
    await this.#roles.atStart(db, endpoint);
    try {
      await this.#move(db, 'running', { current_scale: 1, target_scale: 1, ...routePatchOf(endpoint) });
    } catch (err) {
      await this.driver.stop(dbId); // moved meanwhile (deleted): the writer must not outlive the row's say-so
      throw err;
    }
    log.info({ start_ms: Math.round(seconds * 10_000) / 10, port: endpoint.port }, 'db running');
  }

  async #suspend(dbId: string, reason: SuspendReason, stillIdle?: (db: DbRecord) => Promise<boolean>): Promise<void> {
    const db = await this.#load(dbId);
    switch (db.state) {
      case 'running': {
        if (stillIdle && !(await stillIdle(db))) return;
        const suspending = await this.#move(db, 'suspending', { target_scale: 0 });
        await this.hooks?.at('suspend:suspending', dbId);
        const t0 = performance.now();
        await this.driver.stop(dbId);
        const stopMs = performance.now() - t0;
        await this.#move(suspending, 'suspended', OFF);
        this.metrics.suspends.inc({ reason });
        this.#log.info({ db_id: dbId, reason, stop_ms: Math.round(stopMs * 10) / 10 }, 'db suspended');
        return;
      }
      case 'starting':
      case 'suspending':
      case 'failed':
        await this.driver.stop(dbId);
        await this.#move(db, 'suspended', { ...OFF, failure_reason: null });
        return;
      case 'suspended':
        if (this.driver.describe(dbId).running) await this.driver.stop(dbId);
        return;
      case 'creating':
      case 'deleting':
      case 'deleted':
        return; // nothing runs
    }
  }

  async #delete(dbId: string): Promise<void> {
    let db = await this.ctx.catalog.dbs.byId(dbId);
    if (!db || db.state === 'deleted') return;
    if (db.state !== 'deleting') db = await this.#move(db, 'deleting', { target_scale: 0 });
    await this.driver.destroy(dbId);
    await this.#move(db, 'deleted', OFF);
    this.#log.info({ db_id: dbId }, 'db deleted');
  }

  /** The db with its storage made and its role and database in it, `suspended`; as is if that was done already. */
  async #provisioned(db: DbRecord): Promise<DbRecord> {
    if (db.state === 'deleting' || db.state === 'deleted') throw new Error(`db ${db.id} is being deleted`);
    const needed = db.state === 'creating' || (db.state === 'failed' && !(await this.driver.isProvisioned(db.id)));
    if (!needed) return db;
    const tenant = await this.ctx.catalog.tenants.byId(db.tenant_id);
    if (!tenant) throw new Error(`db ${db.id}: tenant ${db.tenant_id} not found`);
    const log = this.#log.child({ db_id: db.id });
    const t0 = performance.now();
    try {
      await this.driver.provision(this.#spec(db), (endpoint) =>
        createTenantDatabase(endpoint, this.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), {
          name: db.name,
          owner: tenant.pg_user,
          ownerPassword: this.ctx.secrets.internalRolePassword(tenant.pg_user),
        }).then(() => this.#roles.afterProvision(db, endpoint)),
      );
    } catch (err) {
      this.metrics.provisionSeconds.observe({ result: 'failed' }, (performance.now() - t0) / 1000);
      log.error({ err }, 'provision failed');
      await this.#move(db, 'failed', { ...OFF, failure_reason: FAILURE.provision }).catch(() => undefined);
      throw new Error(`provisioning db ${db.id} failed: ${(err as Error).message.split('\n')[0]}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    this.metrics.provisionSeconds.observe({ result: 'ok' }, seconds);
    log.info({ provision_ms: Math.round(seconds * 1000) }, 'db provisioned');
    return this.#move(db, 'suspended', { ...OFF, failure_reason: null });
  }

  #spec(db: DbRecord): ComputeSpec {
    return { dbId: db.id, profile: PROFILES[db.current_profile] };
  }

  async #load(dbId: string): Promise<DbRecord> {
    const db = await this.ctx.catalog.dbs.byId(dbId);
    if (!db) throw new Error(`no db ${dbId}`);
    return db;
  }

  /** Compare-and-set from the state and the fencing epoch `db` was read with. */
  async #move(db: DbRecord, to: DbState, patch: DbPatch): Promise<DbRecord> {
    const epoch = this.epoch();
    if (db.lease_control_epoch > epoch) throw new DbMovedError(`db ${db.id} is run by a newer autoscaler (epoch ${db.lease_control_epoch} > ${epoch})`);
    const moved = await this.ctx.catalog.dbs.transition(db.id, [db.state], to, { ...patch, lease_control_epoch: epoch }, { epoch: db.lease_control_epoch });
    if (!moved) throw new DbMovedError(`db ${db.id} is no longer ${db.state} (or another autoscaler moved it); not moving it to ${to}`);
    return moved;
  }
}
