import type { Catalog, DbRecord, TenantRecord } from '../core/index.js';
import { GatewayError, SQLSTATE } from './errors.js';

/** Who the client says it is and which db it wants, from the startup parameters and TLS SNI. */
export interface RouteRequest {
  user: string;
  /** The `database` parameter (Postgres defaults it to the user name). */
  database: string;
  /** A db id named by `options=endpoint=<db-id>` or SNI `<db-id>.<gateway host>`; it wins over `database`. */
  endpoint: string | null;
  /** The `options` parameter with `endpoint=` taken out, for the compute; null when nothing is left. */
  computeOptions: string | null;
}

export function routeRequestOf(params: Map<string, string>, sni: string | null, gatewayHost: string): RouteRequest {
  const user = params.get('user');
  if (!user) throw new GatewayError(SQLSTATE.invalidAuthorization, 'no PostgreSQL user name specified in startup packet', 'protocol_error');
  const { endpoint: fromOptions, rest } = takeEndpointOption(params.get('options') ?? '');
  return {
    user,
    database: params.get('database') || user,
    endpoint: fromOptions ?? endpointFromSni(sni, gatewayHost),
    computeOptions: rest === '' ? null : rest,
  };
}

/** SNI `<db-id>.<gateway host>` names a db; the gateway host alone, or any other name, does not. */
export function endpointFromSni(sni: string | null, gatewayHost: string): string | null {
  if (!sni) return null;
  const suffix = `.${gatewayHost.toLowerCase()}`;
  const name = sni.toLowerCase();
  if (!name.endsWith(suffix)) return null;
  const label = name.slice(0, -suffix.length);
  return /^[a-z0-9-]+$/.test(label) ? label : null;
}

/**
 * Splits `options` as Postgres does (whitespace separates, backslash escapes) and
 * takes out `endpoint=<id>`: the compute would reject it as an unknown option.
 */
export function takeEndpointOption(options: string): { endpoint: string | null; rest: string } {
  const kept: string[] = [];
  let endpoint: string | null = null;
  let i = 0;
  while (i < options.length) {
    while (i < options.length && /\s/.test(options[i]!)) i++;
    if (i >= options.length) break;
    const start = i;
    let value = '';
    while (i < options.length && !/\s/.test(options[i]!)) {
      if (options[i] === '\\' && i + 1 < options.length) i++;
      value += options[i];
      i++;
    }
    const m = /^(?:--)?endpoint=(.+)$/.exec(value);
    if (m) endpoint = m[1]!;
    else kept.push(options.slice(start, i));
  }
  return { endpoint, rest: kept.join(' ') };
}

/** The tenant that owns `user`: pg_user is unique across the deployment, so the user alone routes. */
export function findTenant(catalog: Catalog, user: string): Promise<TenantRecord | null> {
  return catalog.tenants.byPgUser(user);
}

/**
 * The tenant's db the client asked for. Called only after authentication, so db
 * names cannot be probed without the password. Unknown: 3D000.
 */
export async function findDb(catalog: Catalog, tenant: TenantRecord, req: RouteRequest): Promise<DbRecord> {
  if (req.endpoint) {
    const db = await catalog.dbs.byId(req.endpoint);
    if (!db || db.tenant_id !== tenant.id || db.state === 'deleting' || db.state === 'deleted') {
      throw new GatewayError(SQLSTATE.invalidCatalogName, `endpoint "${req.endpoint}" does not exist`, 'db_not_found');
    }
    return db;
  }
  const db = await catalog.dbs.byName(tenant.id, req.database);
  if (!db || db.state === 'deleting') throw new GatewayError(SQLSTATE.invalidCatalogName, `database "${req.database}" does not exist`, 'db_not_found');
  return db;
}
