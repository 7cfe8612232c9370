import type { Catalog, DbRecord, TenantRecord } from '../core/index.js';
import type { Caller } from './caller.js';
import { notFound } from './errors.js';

/**
 * Lookups scoped to the caller's account. Another account's resource is "not
 * found" exactly like a missing one: its existence does not leak.
 */
export async function ownedTenant(catalog: Catalog, caller: Caller, name: string): Promise<TenantRecord> {
  const tenant = await catalog.tenants.byName(caller.account.id, name);
  if (!tenant) throw notFound(`tenant "${name}"`);
  return tenant;
}

export async function ownedDbByName(catalog: Catalog, caller: Caller, tenantName: string, dbName: string): Promise<DbRecord> {
  const tenant = await ownedTenant(catalog, caller, tenantName);
  const db = await catalog.dbs.byName(tenant.id, dbName);
  if (!db) throw notFound(`db "${dbName}" in tenant "${tenantName}"`);
  return db;
}

export async function ownedDbById(catalog: Catalog, caller: Caller, id: string): Promise<DbRecord> {
  const db = await catalog.dbs.byId(id);
  if (!db || db.account_id !== caller.account.id || db.state === 'deleted') throw notFound(`db "${id}"`);
  return db;
}
