import { BlockList, isIPv4 } from 'node:net';
import type { AccessRule, Catalog, Config, Logger } from '../core/index.js';
import { GatewayError, SQLSTATE } from './errors.js';
import type { LoginTarget } from './login-target.js';

/** What the access rules of a login leave for later steps: connection limits and session lifetimes. */
export interface SessionPolicy {
  dbMaxConnections: number | null;
  tenantMaxConnections: number | null;
  /** 0: never. */
  idleTimeoutSeconds: number;
  maxConnectionLifeSeconds: number;
}

/** `::ffff:203.0.113.9` (an IPv4 client of a dual-stack listener) is `203.0.113.9`. */
export function clientAddressOf(remote: string | undefined): string | null {
  if (!remote) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  return mapped ? mapped[1]! : remote;
}

export function isLoopback(address: string | null): boolean {
  return address !== null && (address === '::1' || (isIPv4(address) && address.startsWith('127.')));
}

/**
 * The network checks of DESIGN §4, after routing and before any password: the
 * tenant's and the db's CIDR allowlists (a client must pass each that is set),
 * bans of the client's address that failed logins made, and the db's TLS
 * enforcement. Refusals are 28000 and say why. Returns the policy of the session.
 */
export async function checkNetworkAccess(catalog: Catalog, config: Config, target: LoginTarget, address: string | null, tls: boolean): Promise<SessionPolicy> {
  const policy: SessionPolicy = { dbMaxConnections: null, tenantMaxConnections: null, idleTimeoutSeconds: config.idleTimeoutSeconds, maxConnectionLifeSeconds: config.maxConnectionLifeSeconds };
  if (!target.tenant) return policy; // nobody known: nothing to protect, and the login fails anyway
  const access = await catalog.accessRules.forLogin(target.tenant.id, target.db?.id ?? null, address);
  const where = target.db ? `database "${target.db.name}"` : `the dbs of user "${target.tenant.pg_user}"`;
  for (const rule of [access.tenant, access.db]) {
    if (rule && !allows(rule, address)) {
      throw new GatewayError(SQLSTATE.invalidAuthorization, `address ${address ?? 'unknown'} is not allowed to connect to ${where}`, 'address_not_allowed', 'the address is outside the network restrictions set for it', 'connect from an allowed network, or change the allowlist (PUT …/network-restrictions)');
    }
  }
  if (access.bannedUntil !== null) {
    throw new GatewayError(SQLSTATE.invalidAuthorization, `address ${address} is banned from ${where} until ${new Date(access.bannedUntil).toISOString()} after too many failed logins`, 'banned', undefined, 'wait, or lift the ban (DELETE …/network-bans/<address>)');
  }
  if (!tls && (access.db?.require_ssl || access.tenant?.require_ssl)) {
    throw new GatewayError(SQLSTATE.invalidAuthorization, `${where} accepts only TLS connections (try using sslmode=require)`, 'tls_required');
  }
  policy.dbMaxConnections = access.db?.max_connections ?? null;
  policy.tenantMaxConnections = access.tenant?.max_connections ?? null;
  policy.idleTimeoutSeconds = access.db?.idle_timeout_seconds ?? config.idleTimeoutSeconds;
  policy.maxConnectionLifeSeconds = access.db?.max_connection_life_seconds ?? config.maxConnectionLifeSeconds;
  return policy;
}

/**
 * Records a failed login for the ban count: in the db's scope when the db is
 * known, else the tenant's. Never fails the caller (the client's answer is the
 * auth failure either way); waited for, so the next attempt sees a ban it made.
 */
export async function recordFailedLogin(catalog: Catalog, config: Config, target: LoginTarget, address: string | null, log: Logger): Promise<void> {
  if (config.banFailedLogins === 0 || !target.tenant || address === null) return;
  try {
    const ban = await catalog.accessRules.recordFailure({ tenantId: target.tenant.id, dbId: target.db?.id ?? null }, address, {
      threshold: config.banFailedLogins,
      windowSeconds: config.banWindowSeconds,
      banSeconds: config.banSeconds,
    });
    if (ban) log.warn({ address, db_id: ban.db_id, tenant_id: ban.tenant_id, failures: ban.failures, banned_until: ban.banned_until }, 'address banned after failed logins');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not record a failed login');
  }
}

/** Allowlists parsed once per distinct list: rules change rarely and are read at every login. */
const parsed = new Map<string, BlockList>();
const MAX_PARSED = 1_000;

function allows(rule: AccessRule, address: string | null): boolean {
  const cidrs = rule.allowed_cidrs;
  if (!cidrs || cidrs.length === 0) return true;
  if (address === null) return false;
  const key = cidrs.join(',');
  let list = parsed.get(key);
  if (!list) {
    list = new BlockList();
    for (const cidr of cidrs) {
      const [net, prefix] = cidr.split('/');
      list.addSubnet(net!, Number(prefix), isIPv4(net!) ? 'ipv4' : 'ipv6');
    }
    if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value!);
    parsed.set(key, list);
  }
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}
