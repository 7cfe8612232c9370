import type { Catalog, Coordinator, DbRecord } from '../core/index.js';
import { GatewayError, SQLSTATE } from './errors.js';
import type { SessionPolicy } from './network-checks.js';

/** A client admitted under its limits: release it when it leaves. */
export type Admission = () => void;

/**
 * Per-db and per-tenant connection limits (53300 above them), checked after
 * authentication and before any wake. This gateway's own sessions are counted
 * exactly; other gateways' are taken from their latest activity reports (the
 * coordinator's heartbeats, a second old at most), so across gateways a limit
 * can be passed by the clients that arrive within one report interval.
 */
export class ConnectionLimits {
  #byDb = new Map<string, number>();
  #byTenant = new Map<string, number>();

  constructor(private readonly catalog: Catalog, private readonly coordinator: Coordinator, private readonly gatewayId: string) {}

  async admit(db: DbRecord, policy: SessionPolicy): Promise<Admission> {
    const { dbMaxConnections: dbMax, tenantMaxConnections: tenantMax } = policy;
    if (dbMax !== null || tenantMax !== null) {
      const elsewhere = await this.#elsewhere(db, tenantMax !== null);
      // No await between the count and the increment: two clients of this gateway cannot both take the last place.
      if (dbMax !== null && (this.#byDb.get(db.id) ?? 0) + elsewhere.db >= dbMax) {
        throw new GatewayError(SQLSTATE.tooManyConnections, `too many connections for database "${db.name}"`, 'too_many_connections', `the db allows ${dbMax} connections at once`, 'close idle connections, use transaction pooling, or raise the limit (PUT …/connection-limits)');
      }
      if (tenantMax !== null && (this.#byTenant.get(db.tenant_id) ?? 0) + elsewhere.tenant >= tenantMax) {
        throw new GatewayError(SQLSTATE.tooManyConnections, `too many connections for the dbs of tenant "${db.tenant}"`, 'too_many_connections', `the tenant allows ${tenantMax} connections at once to all its dbs`, 'close idle connections, or raise the limit (PUT /v2/tenants/<tenant>/connection-limits)');
      }
    }
    // The release keeps the two ids, not the db record: it lasts as long as the client.
    const dbId = db.id;
    const tenantId = db.tenant_id;
    bump(this.#byDb, dbId, 1);
    bump(this.#byTenant, tenantId, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bump(this.#byDb, dbId, -1);
      bump(this.#byTenant, tenantId, -1);
    };
  }

  /** Client connections other live gateways report for the db, and for all dbs of its tenant. */
  async #elsewhere(db: DbRecord, tenantToo: boolean): Promise<{ db: number; tenant: number }> {
    const reports = (await this.coordinator.gatewayReports()).filter((r) => r.gatewayId !== this.gatewayId);
    if (reports.length === 0) return { db: 0, tenant: 0 };
    const tenantDbs = tenantToo ? new Set((await this.catalog.dbs.listByTenant(db.tenant_id)).map((d) => d.id)) : new Set<string>();
    let onDb = 0;
    let onTenant = 0;
    for (const report of reports) {
      for (const [dbId, a] of Object.entries(report.dbs)) {
        if (dbId === db.id) onDb += a.clientConnections;
        if (tenantDbs.has(dbId)) onTenant += a.clientConnections;
      }
    }
    return { db: onDb, tenant: onTenant };
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}
