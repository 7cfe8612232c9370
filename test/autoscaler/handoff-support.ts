import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startAutoscaler, type AutoscalerRole, type HandoffHookInfo, type HandoffPoint } from '../../autoscaler/index.js';
import type { DbRecord, ProfileName } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, postmastersUnder, waitFor, type TenantDb } from './fixtures.js';

/**
 * Postmasters running on a data directory under `dir`. A backend just forked
 * shows its postmaster's command line until it renames itself: only processes
 * whose parent is not one of them are postmasters.
 */
export async function writersUnder(dir: string): Promise<number[]> {
  const pids = await postmastersUnder(dir);
  const parents = await Promise.all(pids.map(async (pid) => Number((await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ')[1])));
  return pids.filter((_, i) => !pids.includes(parents[i]!));
}

/** Short stage deadlines and no cooldowns: a failing handoff ends in seconds, and the next may start at once. */
export const HANDOFF_TEST_ENV: Record<string, string> = {
  PGWAKE_HANDOFF_PREPARE_TIMEOUT_MS: '20000',
  PGWAKE_HANDOFF_CATCHUP_TIMEOUT_MS: '20000',
  PGWAKE_HANDOFF_DRAIN_TIMEOUT_MS: '10000',
  PGWAKE_HANDOFF_CUTOVER_TIMEOUT_MS: '20000',
  PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '0',
  PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_UP_SECONDS: '0',
  PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_DOWN_SECONDS: '0',
  PGWAKE_AUTOSCALE_INTERVAL_MS: '100',
};

export type HookFn = (point: HandoffPoint, info: HandoffHookInfo) => void | Promise<void>;

/** A stack with no roles but the catalog, and an autoscaler started on it whose handoff hooks a test can set. */
export class HandoffStack {
  autoscaler!: AutoscalerRole;
  /** What each test injects at handoff steps; reset between tests. */
  hook: HookFn | undefined;

  private constructor(readonly stack: TestStack) {}

  static async start(env: Record<string, string> = {}, roles: ('gateway' | 'control-api')[] = []): Promise<HandoffStack> {
    const stack = await startTestStack({ ...HANDOFF_TEST_ENV, ...env }, roles);
    const s = new HandoffStack(stack);
    await s.startAutoscaler();
    return s;
  }

  async startAutoscaler(): Promise<AutoscalerRole> {
    this.autoscaler = await startAutoscaler(this.stack.ctx, { handoffHooks: { at: (point, info) => this.hook?.(point, info) } });
    return this.autoscaler;
  }

  /** A db provisioned and running. */
  async runningDb(o: { poolMode?: 'session' | 'transaction' } = {}): Promise<TenantDb> {
    const t = await createTenantDb(this.stack, o);
    await this.stack.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 60_000);
    await this.stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 60_000);
    return t;
  }

  /** What PATCH size does for a running db: asks for a profile; the autoscaler hears it and hands off. */
  async requestProfile(dbId: string, to: ProfileName): Promise<DbRecord> {
    const db = await this.stack.ctx.catalog.dbs.update(dbId, { size: to, target_profile: to }, { states: ['running'], scaleStates: ['STABLE'] });
    if (!db) throw new Error(`db ${dbId} could not be asked for ${to}`);
    return db;
  }

  /** Waits until the db's handoff ended (STABLE with nothing asked, or FAILED). */
  async settled(dbId: string, timeoutMs = 60_000): Promise<DbRecord> {
    return waitFor(
      'handoff to end',
      async () => {
        const db = await dbRow(this.stack, dbId);
        return (db.scale_state === 'STABLE' && db.target_profile === db.current_profile) || db.scale_state === 'FAILED' ? db : null;
      },
      timeoutMs,
    );
  }

  /** The db's data directories and files under computes/<db-id>. */
  async computeDirEntries(dbId: string): Promise<string[]> {
    return (await readdir(path.join(this.stack.dataDir, 'computes', dbId))).sort();
  }

  async destroy(): Promise<void> {
    await this.autoscaler?.stop().catch(() => undefined);
    await this.stack.destroy();
  }
}

export interface LedgerResult {
  acknowledged: number;
  errors: string[];
}

/**
 * A write load that stands where the gateway stands toward a handoff (DESIGN
 * §3–4): it reports its activity to the coordinator as a gateway does (its
 * checkouts in flight, and the freeze generation it applied, at every change
 * while frozen), begins no checkout while the db is frozen, and sends each one
 * to the db's current route. Every client commits numbered rows one at a time
 * and records each commit the server acknowledged.
 */
let loads = 0;

export class LedgerLoad {
  readonly gatewayId = `test-gateway-${process.pid}`;
  /** Client ids of this load start here: loads on one db never write the same key. */
  readonly #firstClient = ++loads * 1000;
  #db: DbRecord;
  #frozen: number | null = null;
  #inFlight = 0;
  #stopped = false;
  #resumed: (() => void)[] = [];
  #acked = new Map<number, number[]>();
  #errors: string[] = [];
  #loops: Promise<void>[] = [];
  #timer: NodeJS.Timeout;
  #unsubscribe: () => void;
  #reporting: Promise<void> = Promise.resolve();
  /** Checkouts this gateway says wait for a server connection (a full pool): a load signal. */
  checkoutsWaiting = 0;
  /** A pause after each commit (0: commit as fast as the server allows). */
  paceMs = 0;

  private constructor(private readonly s: HandoffStack, private readonly t: TenantDb, db: DbRecord, private readonly clients: number) {
    this.#db = db;
    this.#unsubscribe = s.stack.ctx.coordinator.onDbChanged(({ db: changed }) => {
      if (changed.id !== t.db.id) return;
      // A newer route replaces an older one, never the other way (a gateway does the same).
      if (changed.writer_term >= this.#db.writer_term) this.#db = changed;
      this.#frozen = changed.freeze_new_checkouts ? changed.freeze_generation : null;
      if (this.#frozen === null) for (const r of this.#resumed.splice(0)) r();
      void this.report();
    });
    this.#timer = setInterval(() => void this.report(), 200);
  }

  static async start(s: HandoffStack, t: TenantDb, clients = 8): Promise<LedgerLoad> {
    const admin = await LedgerLoad.connect(s, t, await dbRow(s.stack, t.db.id));
    await admin.query('CREATE TABLE IF NOT EXISTS ledger (client int, seq int, PRIMARY KEY (client, seq))');
    await admin.end();
    const load = new LedgerLoad(s, t, await dbRow(s.stack, t.db.id), clients);
    await load.report();
    for (let c = 1; c <= clients; c++) load.#loops.push(load.#client(load.#firstClient + c));
    return load;
  }

  static async connect(s: HandoffStack, t: TenantDb, db: DbRecord): Promise<pg.Client> {
    const client = new pg.Client({
      host: db.compute_host!,
      port: db.compute_port!,
      user: t.tenant.pg_user,
      password: s.stack.ctx.secrets.internalRolePassword(t.tenant.pg_user),
      database: db.name,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  report(): Promise<void> {
    const activity = { clientConnections: this.clients, checkoutsInFlight: this.#inFlight, openTransactions: this.#inFlight, lastActivityAt: Date.now(), freezeGeneration: this.#frozen, checkoutsWaiting: this.checkoutsWaiting };
    this.#reporting = this.#reporting.then(() => this.s.stack.ctx.coordinator.reportActivity({ gatewayId: this.gatewayId, dbs: { [this.t.db.id]: activity } }, 5_000));
    return this.#reporting;
  }

  get acknowledged(): number {
    let n = 0;
    for (const seqs of this.#acked.values()) n += seqs.length;
    return n;
  }

  async #checkout(): Promise<void> {
    while (this.#frozen !== null && !this.#stopped) await new Promise<void>((r) => this.#resumed.push(r));
    this.#inFlight++;
    if (this.#frozen !== null) await this.report();
  }

  async #checkin(): Promise<void> {
    this.#inFlight--;
    if (this.#frozen !== null) await this.report();
  }

  async #client(id: number): Promise<void> {
    const acked: number[] = [];
    this.#acked.set(id, acked);
    // A connection its server closed (a fenced writer) is dropped before its next use, as a gateway's pool does.
    let conn: { client: pg.Client; port: number; closed: boolean } | null = null;
    for (let seq = 1; !this.#stopped; seq++) {
      await this.#checkout();
      if (this.#stopped) {
        await this.#checkin();
        break;
      }
      try {
        const route = this.#db;
        if (!conn || conn.closed || conn.port !== route.compute_port) {
          await conn?.client.end().catch(() => undefined);
          conn = null;
          const client = await LedgerLoad.connect(this.s, this.t, route);
          const c = { client, port: route.compute_port!, closed: false };
          client.on('end', () => (c.closed = true));
          conn = c;
        }
        await conn.client.query('INSERT INTO ledger (client, seq) VALUES ($1, $2)', [id, seq]);
        acked.push(seq);
        if (this.paceMs > 0) await sleep(this.paceMs);
      } catch (err) {
        this.#errors.push(`client ${id} seq ${seq}: ${(err as Error).message}`);
        await conn?.client.end().catch(() => undefined);
        conn = null;
        await sleep(20);
      } finally {
        await this.#checkin();
      }
    }
    await conn?.client.end().catch(() => undefined);
  }

  /** Stops the clients and checks that every acknowledged commit is in the db. */
  async stop(): Promise<LedgerResult & { missing: number }> {
    this.#stopped = true;
    for (const r of this.#resumed.splice(0)) r();
    await Promise.all(this.#loops);
    clearInterval(this.#timer);
    this.#unsubscribe();
    await this.#reporting.catch(() => undefined);
    await this.s.stack.ctx.coordinator.reportActivity({ gatewayId: this.gatewayId, dbs: {} }, 1);
    const client = await LedgerLoad.connect(this.s, this.t, await dbRow(this.s.stack, this.t.db.id));
    const { rows } = await client.query<{ client: number; seq: number }>('SELECT client, seq FROM ledger');
    await client.end();
    const present = new Set(rows.map((r) => `${r.client}/${r.seq}`));
    let missing = 0;
    for (const [id, seqs] of this.#acked) for (const seq of seqs) if (!present.has(`${id}/${seq}`)) missing++;
    return { acknowledged: this.acknowledged, errors: this.#errors, missing };
  }
}
