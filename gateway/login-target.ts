import type { Catalog, DbRecord, RoleRecord, TenantRecord } from '../core/index.js';
import { GatewayError } from './errors.js';
import { findDb, findTenant, type RouteRequest } from './route.js';

/**
 * Who a client says it is, found before it proves it: a tenant's login (routed by
 * `pg_user`, unique in the deployment), a role of one db (named by the db's
 * endpoint: `options=endpoint=<db-id>` or SNI, since role names are unique only
 * within a db), or nobody known. The db is looked up now too, for the network
 * checks that come before any password, and is told to the client only after it.
 */
export type LoginTarget =
  | { kind: 'tenant'; tenant: TenantRecord; db: DbRecord | null; dbMissing: GatewayError | null }
  | { kind: 'role'; tenant: TenantRecord; db: DbRecord; role: RoleRecord }
  | { kind: 'unknown'; tenant: TenantRecord | null; db: DbRecord | null };

export async function findLoginTarget(catalog: Catalog, request: RouteRequest): Promise<LoginTarget> {
  const tenant = await findTenant(catalog, request.user);
  if (tenant) {
    try {
      return { kind: 'tenant', tenant, db: await findDb(catalog, tenant, request), dbMissing: null };
    } catch (err) {
      // Said after authentication, so db names cannot be probed without the password.
      if (err instanceof GatewayError && err.outcome === 'db_not_found') return { kind: 'tenant', tenant, db: null, dbMissing: err };
      throw err;
    }
  }
  if (!request.endpoint) return { kind: 'unknown', tenant: null, db: null };
  const db = await catalog.dbs.byId(request.endpoint);
  if (!db || db.state === 'deleting' || db.state === 'deleted') return { kind: 'unknown', tenant: null, db: null };
  const [role, owner] = await Promise.all([catalog.roles.byName(db.id, request.user), catalog.tenants.byId(db.tenant_id)]);
  if (!owner) return { kind: 'unknown', tenant: null, db: null };
  return role ? { kind: 'role', tenant: owner, db, role } : { kind: 'unknown', tenant: owner, db };
}
