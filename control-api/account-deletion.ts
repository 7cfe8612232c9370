import { publicDb, type PublicDb, type RoleContext } from '../core/index.js';
import type { TenantDeletions } from './deletion.js';

/**
 * Deleting an account's contents after `accounts.markDeleted` (which already
 * stopped its keys): every tenant goes, those with dbs through the same path
 * as `DELETE /v2/tenants/:tenant?cascade=true`. Asynchronous like it: the dbs
 * show `deleting` at once and the tenants go when their last db is gone.
 */
export class AccountDeletions {
  constructor(private readonly ctx: RoleContext, private readonly tenants: TenantDeletions) {}

  async begin(accountId: string): Promise<{ tenants: string[]; dbs: PublicDb[] }> {
    const { catalog } = this.ctx;
    const names: string[] = [];
    const deleting: PublicDb[] = [];
    for (const tenant of await catalog.tenants.list(accountId)) {
      names.push(tenant.name);
      const dbs = await catalog.dbs.listByTenant(tenant.id);
      if (dbs.length === 0) await catalog.tenants.delete(tenant);
      else deleting.push(...(await this.tenants.begin(tenant, dbs)).map(publicDb));
    }
    this.ctx.logger.info({ account_id: accountId, tenants: names.length, dbs: deleting.length }, 'account deleting');
    return { tenants: names, dbs: deleting };
  }

  /** Picks up deletions that a stopped control API left half done. */
  async resumeUnfinished(): Promise<void> {
    for (const accountId of await this.ctx.catalog.accounts.deletedWithTenants()) {
      await this.begin(accountId).catch((err: Error) => this.ctx.logger.warn({ account_id: accountId, err: err.message }, 'could not resume deleting an account'));
    }
  }
}
