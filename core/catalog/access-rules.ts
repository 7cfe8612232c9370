import type pg from 'pg';

/**
 * Who may connect to a tenant's dbs, from where and for how long: one row per
 * tenant (db_id null) and per db. A field that is null is not set at that level.
 */
export interface AccessRule {
  scope_id: string;
  tenant_id: string;
  db_id: string | null;
  /** CIDRs in Postgres's canonical text (`10.0.0.0/8`, `::1/128`); null or empty: any address. */
  allowed_cidrs: string[] | null;
  require_ssl: boolean;
  max_connections: number | null;
  idle_timeout_seconds: number | null;
  max_connection_life_seconds: number | null;
  /** Null: never set. */
  updated_at: string | null;
}

export type AccessRulePatch = Partial<Pick<AccessRule, 'allowed_cidrs' | 'require_ssl' | 'max_connections' | 'idle_timeout_seconds' | 'max_connection_life_seconds'>>;

/** Where the rules of one login come from: its tenant, its db (when known), and a ban of the address if one holds. */
export interface LoginAccess {
  tenant: AccessRule | null;
  db: AccessRule | null;
  /** The latest end of a ban on the address in the tenant's or the db's scope; null: not banned. */
  bannedUntil: string | null;
}

export interface NetworkBan {
  scope_id: string;
  tenant_id: string;
  db_id: string | null;
  address: string;
  failures: number;
  banned_at: string;
  banned_until: string;
}

/** Problems Postgres found in CIDRs given to `canonicalCidrs`, by position. */
export class InvalidCidrs extends Error {
  constructor(readonly problems: { index: number; value: string; problem: string }[]) {
    super(problems.map((p) => `${p.value}: ${p.problem}`).join('; '));
  }
}

const EMPTY_RULE = { allowed_cidrs: null, require_ssl: false, max_connections: null, idle_timeout_seconds: null, max_connection_life_seconds: null };

/** Access rules, failed logins and the bans they lead to. */
export class AccessRuleStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The rule of a scope as stored, or one with nothing set. */
  async get(tenantId: string, dbId: string | null): Promise<AccessRule> {
    const scope = dbId ?? tenantId;
    const { rows } = await this.pool.query<AccessRule>(`SELECT ${RULE_COLUMNS} FROM access_rules WHERE scope_id = $1`, [scope]);
    return rows[0] ?? { scope_id: scope, tenant_id: tenantId, db_id: dbId, ...EMPTY_RULE, updated_at: null };
  }

  /** Sets the fields of `patch` in the scope's rule (made on first use); others stay. */
  async set(tenantId: string, dbId: string | null, patch: AccessRulePatch): Promise<AccessRule> {
    const keys = Object.keys(patch) as (keyof AccessRulePatch)[];
    const values: unknown[] = [dbId ?? tenantId, tenantId, dbId];
    const cols = keys.map((k) => {
      values.push(patch[k]);
      return { k, p: `$${values.length}${k === 'allowed_cidrs' ? '::cidr[]' : ''}` };
    });
    const { rows } = await this.pool.query<AccessRule>(
      `INSERT INTO access_rules AS a (scope_id, tenant_id, db_id${cols.map((c) => `, ${c.k}`).join('')})
       VALUES ($1, $2, $3${cols.map((c) => `, ${c.p}`).join('')})
       ON CONFLICT (scope_id) DO UPDATE SET updated_at = now()${cols.map((c) => `, ${c.k} = EXCLUDED.${c.k}`).join('')}
       RETURNING ${RULE_COLUMNS}`,
      values,
    );
    return rows[0]!;
  }

  /**
   * CIDRs as Postgres's `cidr` type reads them (`10.1.2.0/24`, `::1/128`; a bare
   * address is a /32 or /128). Throws InvalidCidrs naming each one it refuses,
   * host bits right of the mask included, as Postgres does.
   */
  async canonicalCidrs(cidrs: string[]): Promise<string[]> {
    const problems: InvalidCidrs['problems'] = [];
    const out: string[] = [];
    for (const [index, value] of cidrs.entries()) {
      try {
        const { rows } = await this.pool.query<{ c: string }>('SELECT $1::cidr::text AS c', [value]);
        out.push(rows[0]!.c);
      } catch (err) {
        const e = err as { code?: string; message: string; detail?: string };
        if (e.code !== '22P02') throw err;
        problems.push({ index, value, problem: await this.#cidrProblem(value, e.detail) });
      }
    }
    if (problems.length > 0) throw new InvalidCidrs(problems);
    return [...new Set(out)];
  }

  async #cidrProblem(value: string, detail: string | undefined): Promise<string> {
    if (!detail?.includes('bits set to right of mask')) return 'is not an IPv4 or IPv6 address or CIDR';
    const { rows } = await this.pool.query<{ n: string }>('SELECT network($1::inet)::text AS n', [value]).catch(() => ({ rows: [] as { n: string }[] }));
    return `has bits set right of its mask${rows[0] ? ` (the network is ${rows[0].n})` : ''}`;
  }

  /** What the gateway reads before any password check: the rules of the tenant and the db, and a ban of `address` in either. */
  async forLogin(tenantId: string, dbId: string | null, address: string | null): Promise<LoginAccess> {
    const scopes = [tenantId, ...(dbId ? [dbId] : [])];
    const { rows } = await this.pool.query<{ rules: AccessRule[]; banned_until: string | null }>(
      `SELECT coalesce((SELECT json_agg(r) FROM (SELECT ${RULE_COLUMNS} FROM access_rules WHERE scope_id = ANY($1)) r), '[]') AS rules,
              (SELECT max(banned_until) FROM network_bans WHERE scope_id = ANY($1) AND address = $2::inet AND banned_until > now()) AS banned_until`,
      [scopes, address],
    );
    const { rules, banned_until } = rows[0]!;
    return {
      tenant: rules.find((r) => r.scope_id === tenantId) ?? null,
      db: dbId ? (rules.find((r) => r.scope_id === dbId) ?? null) : null,
      bannedUntil: banned_until,
    };
  }

  /**
   * Records a failed login from `address` in a scope (the db's id, or the tenant's
   * when no db was known). When `threshold` failures fell within `windowSeconds`,
   * the address is banned in that scope for `banSeconds`; returns the ban then.
   */
  async recordFailure(scope: { tenantId: string; dbId: string | null }, address: string, o: { threshold: number; windowSeconds: number; banSeconds: number }): Promise<NetworkBan | null> {
    const scopeId = scope.dbId ?? scope.tenantId;
    const { rows } = await this.pool.query<NetworkBan>(
      `WITH pruned AS (
         DELETE FROM login_failures WHERE scope_id = $1 AND address = $2::inet AND at <= now() - make_interval(secs => $4)
       ), added AS (
         INSERT INTO login_failures (scope_id, address) VALUES ($1, $2::inet)
       ), counted AS (
         -- This statement's own insert is not visible to its reads: it is the +1.
         SELECT count(*) + 1 AS n FROM login_failures WHERE scope_id = $1 AND address = $2::inet AND at > now() - make_interval(secs => $4)
       )
       INSERT INTO network_bans AS b (scope_id, tenant_id, db_id, address, failures, banned_until)
         SELECT $1, $5, $6, $2::inet, n, now() + make_interval(secs => $7) FROM counted WHERE n >= $3
       ON CONFLICT (scope_id, address) DO UPDATE SET failures = EXCLUDED.failures, banned_at = now(), banned_until = EXCLUDED.banned_until
       RETURNING ${BAN_COLUMNS}`,
      [scopeId, address, o.threshold, o.windowSeconds, scope.tenantId, scope.dbId, o.banSeconds],
    );
    return rows[0] ?? null;
  }

  /** Bans in force that keep `address`es from a db: the db's own and its tenant's. */
  async bansFor(tenantId: string, dbId: string): Promise<NetworkBan[]> {
    const { rows } = await this.pool.query<NetworkBan>(
      `SELECT ${BAN_COLUMNS} FROM network_bans b WHERE b.scope_id = ANY($1) AND b.banned_until > now() ORDER BY b.banned_at, b.address`,
      [[dbId, tenantId]],
    );
    return rows;
  }

  /** Lifts the bans of `address` that keep it from the db (its own and its tenant's) and forgets its failures; the bans lifted. */
  async lift(tenantId: string, dbId: string, address: string): Promise<NetworkBan[]> {
    const scopes = [dbId, tenantId];
    await this.pool.query('DELETE FROM login_failures WHERE scope_id = ANY($1) AND address = $2::inet', [scopes, address]);
    const { rows } = await this.pool.query<NetworkBan & { active: boolean }>(
      `DELETE FROM network_bans b WHERE b.scope_id = ANY($1) AND b.address = $2::inet RETURNING ${BAN_COLUMNS}, (b.banned_until > now()) AS active`,
      [scopes, address],
    );
    return rows.filter((r) => r.active).map(({ active: _a, ...ban }) => ban);
  }
}

const RULE_COLUMNS = 'scope_id, tenant_id, db_id, allowed_cidrs::text[] AS allowed_cidrs, require_ssl, max_connections, idle_timeout_seconds, max_connection_life_seconds, updated_at';
const BAN_COLUMNS = 'b.scope_id, b.tenant_id, b.db_id, host(b.address) AS address, b.failures, b.banned_at, b.banned_until';
