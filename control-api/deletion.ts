import { canTransition, DB_STATES, type DbRecord, type RoleContext, type TenantRecord, type Unsubscribe } from '../core/index.js';
import { controlTimeoutMs } from './control-requests.js';
import { notFound } from './errors.js';

/** The states a db can be deleted from: all but `deleting` and `deleted`. */
const DELETABLE = DB_STATES.filter((s) => canTransition(s, 'deleting'));

/**
 * Deletion is asynchronous: the db shows `deleting` at once, and the autoscaler
 * stops its compute, removes its data and marks it `deleted` in its own time.
 * Asking again while it is `deleting` asks the autoscaler again (a retry after
 * a failed attempt); the coordinator folds identical requests into one.
 */
export async function beginDbDeletion(ctx: RoleContext, db: DbRecord): Promise<DbRecord> {
  const deleting = (await ctx.catalog.dbs.transition(db.id, DELETABLE, 'deleting')) ?? (await ctx.catalog.dbs.byId(db.id));
  if (!deleting || deleting.state === 'deleted') throw notFound(`db "${db.name}"`);
  ctx.coordinator.requestControl({ action: 'delete', dbId: db.id }, controlTimeoutMs(ctx, 'delete')).catch((err: Error) => {
    ctx.logger.warn({ db_id: db.id, err: err.message }, 'db delete did not finish; the db stays deleting until the autoscaler retries');
  });
  return deleting;
}

/**
 * Tenants deleted with `?cascade=true`: each waits until its last db is
 * `deleted`, then its row goes. Listens for db changes so a deletion that
 * finishes late (after a timeout, or by another autoscaler) still completes.
 */
export class TenantDeletions {
  #pending = new Map<string, TenantRecord>();
  #unsubscribe: Unsubscribe;

  constructor(private readonly ctx: RoleContext) {
    this.#unsubscribe = ctx.coordinator.onDbChanged(({ db }) => {
      if (db.state === 'deleted' && this.#pending.has(db.tenant_id)) void this.#finishIfEmpty(db.tenant_id);
    });
  }

  /** The tenant is on its way out: no new dbs in it. */
  pending(tenantId: string): boolean {
    return this.#pending.has(tenantId);
  }

  /** Starts deleting every db of `tenant`; returns them as they are now (`deleting`). */
  async begin(tenant: TenantRecord, dbs: DbRecord[]): Promise<DbRecord[]> {
    this.#pending.set(tenant.id, tenant);
    const deleting: DbRecord[] = [];
    for (const db of dbs) {
      try {
        deleting.push(await beginDbDeletion(this.ctx, db));
      } catch {
        // Already deleted meanwhile: nothing left to wait for.
      }
    }
    void this.#finishIfEmpty(tenant.id);
    return deleting;
  }

  async #finishIfEmpty(tenantId: string): Promise<void> {
    const tenant = this.#pending.get(tenantId);
    if (!tenant) return;
    try {
      if ((await this.ctx.catalog.dbs.listByTenant(tenantId)).length > 0) return;
      if (!this.#pending.delete(tenantId)) return; // another check got here first
      await this.ctx.catalog.tenants.delete(tenant);
      this.ctx.logger.info({ tenant_id: tenantId }, 'tenant deleted after its dbs');
    } catch (err) {
      this.ctx.logger.warn({ tenant_id: tenantId, err: (err as Error).message }, 'could not finish deleting tenant');
    }
  }

  stop(): void {
    this.#unsubscribe();
  }
}
