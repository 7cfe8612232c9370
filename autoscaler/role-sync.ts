import pg from 'pg';
import { Counter } from 'prom-client';
import { createScramVerifier, formatScramVerifier, INTERNAL_SUPERUSER, type DbRecord, type Logger, type RoleContext, type RoleRecord, type RoleSyncState } from '../core/index.js';
import type { ComputeDriver, ComputeEndpoint } from './compute-driver.js';
import { connectAsSuperuser } from './compute-sql.js';

/**
 * A comment on each role pgwake made on a compute, with the catalog id of the
 * role it stands for: roles without it (the superuser, the tenant's login,
 * Postgres's own) are never touched, and a role deleted and made again under the
 * same name is told apart from the old one (whose sessions must end).
 */
const MARK = 'pgwake db role ';
/** How long ending a dropped role's sessions may take, per session. */
const TERMINATE_WAIT_MS = 5_000;
/** Rounds of "apply, then look whether the catalog moved meanwhile" before giving up until the next request. */
const MAX_ROUNDS = 5;

export interface RoleSyncOutcome {
  created: string[];
  dropped: string[];
  sessionsEnded: number;
}

type InDbTurn = <T>(dbId: string, key: string, fn: () => Promise<T>) => Promise<T>;

/**
 * Makes a compute's roles match the catalog's `roles` of its db (DESIGN §2): each
 * role exists there with LOGIN and a SCRAM verifier of `secrets.dbRolePassword`,
 * which only the gateway can log in with; a role gone from the catalog loses LOGIN,
 * its sessions are ended, what it owns passes to the tenant's login and it is
 * dropped. Runs when a compute starts (before the db is `running`), after a
 * provision, and on a `sync_roles` request while it runs; always in the db's turn
 * of the controller's queue, so never during a handoff or a suspend.
 */
export class ComputeRoleSync {
  /** Requests queued but not started: a later request joins one, as it will read the catalog anyway. */
  #waiting = new Map<string, Promise<void>>();
  #seq = 0;
  readonly #syncs: Counter<'outcome'>;

  constructor(private readonly ctx: RoleContext, private readonly driver: ComputeDriver, private readonly inDbTurn: InDbTurn, private readonly log: Logger) {
    const name = 'pgwake_compute_role_syncs_total';
    this.#syncs =
      (ctx.metrics.getSingleMetric(name) as Counter<'outcome'> | undefined) ??
      new Counter({ name, help: "Times a compute's roles were checked against the catalog: up_to_date (nothing to connect for), applied, failed", labelNames: ['outcome'] as const, registers: [ctx.metrics] });
  }

  /** A `sync_roles` control request: applied now if the db runs, else at its next start. */
  request(dbId: string): Promise<void> {
    const waiting = this.#waiting.get(dbId);
    if (waiting) return waiting;
    // Never joined with one already running: that one may have read the catalog before this change.
    const run = this.inDbTurn(dbId, `sync-roles:${++this.#seq}`, async () => {
      this.#waiting.delete(dbId);
      const db = await this.ctx.catalog.dbs.byId(dbId);
      const endpoint = this.driver.describe(dbId).endpoint;
      if (!db || db.state !== 'running' || !endpoint || db.compute_port !== endpoint.port) return; // applied at the next start
      await this.apply(db, endpoint, { whenBehind: true });
    });
    this.#waiting.set(dbId, run);
    void run.finally(() => {
      if (this.#waiting.get(dbId) === run) this.#waiting.delete(dbId);
    }).catch(() => undefined);
    return run;
  }

  /**
   * At a start, before the db is `running`. A failure is logged, not fatal: the
   * tenant's login works without these roles, and the next request or start retries.
   */
  async atStart(db: DbRecord, endpoint: Pick<ComputeEndpoint, 'host' | 'port'>): Promise<void> {
    try {
      await this.apply(db, endpoint, { whenBehind: true });
    } catch (err) {
      this.log.error({ db_id: db.id, err: (err as Error).message }, "could not apply the db's roles on its compute; the next sync request or start retries");
    }
  }

  /**
   * After a provision, on its fresh storage, which holds no role of pgwake's yet:
   * with none in the catalog there is nothing to connect for.
   */
  async afterProvision(db: DbRecord, endpoint: Pick<ComputeEndpoint, 'host' | 'port'>): Promise<void> {
    try {
      const state = await this.ctx.catalog.roles.syncState(db.id);
      if (state.roles.length === 0) await this.ctx.catalog.roles.markSynced(db.id, state.version);
      else await this.apply(db, endpoint, { whenBehind: false });
    } catch (err) {
      this.log.error({ db_id: db.id, err: (err as Error).message }, "could not apply the db's roles on its new storage; its first start retries");
      await this.ctx.catalog.roles.markUnsynced(db.id).catch(() => undefined);
    }
  }

  /**
   * Applies the catalog's roles on a compute that runs at `endpoint`. With
   * `whenBehind`, a compute already at the catalog's version is not even
   * connected to. Loops until the catalog did not move during a round.
   */
  async apply(db: DbRecord, endpoint: Pick<ComputeEndpoint, 'host' | 'port'>, o: { whenBehind: boolean }): Promise<RoleSyncOutcome> {
    const outcome: RoleSyncOutcome = { created: [], dropped: [], sessionsEnded: 0 };
    const state = await this.ctx.catalog.roles.syncState(db.id);
    if (o.whenBehind && state.version === state.syncedVersion) {
      this.#syncs.inc({ outcome: 'up_to_date' });
      return outcome;
    }
    try {
      await this.#applyAll(db, endpoint, state, outcome);
    } catch (err) {
      this.#syncs.inc({ outcome: 'failed' });
      throw err;
    }
    this.#syncs.inc({ outcome: 'applied' });
    return outcome;
  }

  async #applyAll(db: DbRecord, endpoint: Pick<ComputeEndpoint, 'host' | 'port'>, state: RoleSyncState, outcome: RoleSyncOutcome): Promise<void> {
    const t0 = performance.now();
    const tenant = await this.ctx.catalog.tenants.byId(db.tenant_id);
    if (!tenant) throw new Error(`db ${db.id}: tenant ${db.tenant_id} not found`);
    const client = await connectAsSuperuser(endpoint, this.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), db.name);
    try {
      for (let round = 0; ; round++) {
        await this.#applyOnce(client, db, tenant.pg_user, state.roles, outcome);
        const now = await this.ctx.catalog.roles.syncState(db.id);
        if (now.version === state.version) break;
        if (round + 1 >= MAX_ROUNDS) throw new Error(`roles of db ${db.id} kept changing while they were applied; the next request or start applies the rest`);
        state = now;
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    await this.ctx.catalog.roles.markSynced(db.id, state.version);
    if (outcome.created.length + outcome.dropped.length > 0) {
      this.log.info({ db_id: db.id, created: outcome.created, dropped: outcome.dropped, sessions_ended: outcome.sessionsEnded, ms: Math.round(performance.now() - t0) }, 'compute roles synced');
    }
  }

  async #applyOnce(client: pg.Client, db: DbRecord, tenantLogin: string, wanted: RoleRecord[], outcome: RoleSyncOutcome): Promise<void> {
    const { rows } = await client.query<{ rolname: string; mark: string | null }>(
      `SELECT r.rolname, d.description AS mark FROM pg_roles r
         LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass`,
    );
    const onCompute = new Map(rows.map((r) => [r.rolname, r.mark?.startsWith(MARK) ? r.mark.slice(MARK.length) : null]));
    const wantedNames = new Set(wanted.map((r) => r.name));

    for (const [name, markedId] of onCompute) {
      if (markedId !== null && !wantedNames.has(name)) {
        outcome.sessionsEnded += await this.#drop(client, name, tenantLogin);
        outcome.dropped.push(name);
      }
    }
    for (const role of wanted) {
      const present = onCompute.has(role.name);
      const markedId = onCompute.get(role.name) ?? null;
      if (present && markedId === null) {
        // Reserved names keep this from happening; never take over a role pgwake did not make.
        this.log.error({ db_id: db.id, role: role.name }, 'a role of this name exists on the compute and was not made by pgwake; not touching it');
        continue;
      }
      if (markedId === role.id) continue;
      const ident = pg.escapeIdentifier(role.name);
      if (present) {
        // Dropped and made again under the same name: the old role's sessions are not the new one's.
        outcome.sessionsEnded += await this.#endSessions(client, role.name);
      }
      // A verifier, never the password, goes over the wire and into any statement log.
      const verifier = pg.escapeLiteral(formatScramVerifier(createScramVerifier(this.ctx.secrets.dbRolePassword(db.id, role.name))));
      await client.query(`${present ? 'ALTER' : 'CREATE'} ROLE ${ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${verifier}`);
      await client.query(`COMMENT ON ROLE ${ident} IS ${pg.escapeLiteral(MARK + role.id)}`);
      outcome.created.push(role.name);
    }
  }

  /** Ends a role on the compute: no new logins, no sessions, nothing owned, gone. Returns the sessions ended. */
  async #drop(client: pg.Client, name: string, tenantLogin: string): Promise<number> {
    const ident = pg.escapeIdentifier(name);
    await client.query(`ALTER ROLE ${ident} NOLOGIN`);
    const ended = await this.#endSessions(client, name);
    // What it made in the tenant's database becomes the tenant's; grants to it go with it.
    await client.query(`REASSIGN OWNED BY ${ident} TO ${pg.escapeIdentifier(tenantLogin)}`);
    await client.query(`DROP OWNED BY ${ident}`);
    await client.query(`DROP ROLE ${ident}`);
    return ended;
  }

  async #endSessions(client: pg.Client, name: string): Promise<number> {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()) t',
      [name, TERMINATE_WAIT_MS],
    );
    return rows[0]!.n;
  }
}
