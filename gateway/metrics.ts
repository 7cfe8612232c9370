import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DbActivity } from '../core/index.js';
import type { AuthFailureReason } from './auth/scram.js';
import type { ConnectionOutcome } from './errors.js';
import { CountedHistogram } from './counted-histogram.js';
import { countLiveBytes } from './relay.js';

/** Bytes relayed, read off the sockets' own counters (never per chunk) and handed to prom-client when scraped. */
export interface RelayedBytes {
  clientToCompute: number;
  computeToClient: number;
}

/** What a gateway's pools tell the metrics when scraped. */
export interface PoolMetricsSource {
  stats(): { idle: number; active: number; opening: number; waiting: number };
  frozenDbs(): number;
  /** When the checkout that has waited longest began to wait (ms since the epoch); undefined when none waits. */
  oldestCheckoutWaitStartedAt(): number | undefined;
}

/** What a gateway's activity tracker tells the metrics when scraped: its clients per db. */
export interface ClientActivitySource {
  snapshot(): Record<string, DbActivity>;
}

/** How a wake the gateway asked for ended: `started` (a route came back), or why it did not. */
export const WAKE_RESULTS = ['started', 'timeout', 'db_gone', 'client_gone', 'failed'] as const;
export type WakeResult = (typeof WAKE_RESULTS)[number];

type ClientState = 'active' | 'waiting' | 'idle';

const byRegistry = new WeakMap<Registry, GatewayMetrics>();

/** The gateway's Prometheus metrics (DESIGN §6: `pgwake_` prefix, units in names, no per-db labels). */
export class GatewayMetrics {
  readonly connectionsOpen: Gauge;
  readonly connections: Counter<'outcome'>;
  readonly authFailures: Counter<'reason'>;
  readonly wakeSeconds: Histogram<'kind'>;
  readonly relayed: RelayedBytes = { clientToCompute: 0, computeToClient: 0 };
  readonly checkoutWaitSeconds: CountedHistogram;
  readonly freezeSeconds: Histogram;
  /** Pools and freezes of every gateway on this registry, read when scraped. */
  readonly sources = new Set<PoolMetricsSource>();
  /** Client activity of every gateway on this registry, read when scraped. */
  readonly activities = new Set<ClientActivitySource>();
  readonly wakes: Counter<'result'>;
  readonly wakeRequestSeconds: Histogram;
  #checkouts: Counter<'outcome'>;
  #served = 0;
  #timedOut = 0;

  /**
   * One set per registry: a second gateway on the same registry (tests, a restart) shares it.
   * `perDbLimit` (PGWAKE_METRICS_PER_DB_LIMIT) dbs get client series of their own; 0: none.
   */
  static for(registry: Registry, perDbLimit = 0): GatewayMetrics {
    let m = byRegistry.get(registry);
    if (!m) {
      m = new GatewayMetrics(registry, perDbLimit);
      byRegistry.set(registry, m);
    }
    return m;
  }

  private constructor(registry: Registry, perDbLimit: number) {
    const registers = [registry];
    this.connectionsOpen = new Gauge({ name: 'pgwake_gateway_connections', help: 'Client connections open on the gateway.', registers });
    this.connections = new Counter({
      name: 'pgwake_gateway_connections_total',
      help: 'Client connections by how their startup ended (relayed, auth_failed, protocol_error, db_not_found, compute_unavailable, …).',
      labelNames: ['outcome'],
      registers,
    });
    this.authFailures = new Counter({ name: 'pgwake_gateway_auth_failures_total', help: 'Failed client authentications by reason.', labelNames: ['reason'], registers });
    this.wakeSeconds = new Histogram({
      name: 'pgwake_gateway_wake_seconds',
      help: 'From a client authenticated to its session ready on the compute: the time the gateway is responsible for. cold: a start was asked for; warm: the compute was running.',
      labelNames: ['kind'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.wakes = new Counter({
      name: 'pgwake_gateway_wakes_total',
      help: 'Wakes this gateway asked the autoscaler for (a client or a pool found the compute stopped), by result: started, timeout (57P03 to the client), db_gone, client_gone, failed (the catalog could not be read). Concurrent asks for one db share one start.',
      labelNames: ['result'],
      registers,
    });
    for (const result of WAKE_RESULTS) this.wakes.inc({ result }, 0); // the first wake is then an increase rate() sees
    this.wakeRequestSeconds = new Histogram({
      name: 'pgwake_gateway_wake_request_seconds',
      help: 'From asking for a wake to the route of the started compute (or the end of the wait, whatever the result).',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    // Observed on the hot path (a busy pool's every checkout waits): counted without prom-client's per-call cost.
    this.checkoutWaitSeconds = new CountedHistogram(
      'pgwake_gateway_checkout_wait_seconds',
      'How long transaction-mode checkouts that found no idle server connection waited for one (freezes included); the others are in pgwake_gateway_checkouts_total.',
      [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    );
    this.freezeSeconds = new Histogram({
      name: 'pgwake_gateway_freeze_seconds',
      help: 'How long dbs stayed frozen on this gateway (from the freeze applied to its lift).',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const counts = () => ({ served: this.#served, timedOut: this.#timedOut });
    const flushedCheckouts = { served: 0, timedOut: 0 };
    this.#checkouts = new Counter({
      name: 'pgwake_gateway_checkouts_total',
      help: 'Transaction-mode checkouts by outcome: served, or timeout (53300 after the checkout timeout).',
      labelNames: ['outcome'],
      registers,
      collect() {
        const now = counts();
        this.inc({ outcome: 'served' }, now.served - flushedCheckouts.served);
        this.inc({ outcome: 'timeout' }, now.timedOut - flushedCheckouts.timedOut);
        Object.assign(flushedCheckouts, now);
      },
    });
    const sources = this.sources;
    new Gauge({
      name: 'pgwake_gateway_checkout_queue_length',
      help: 'Clients waiting for a server connection (transaction mode) or for a freeze to lift.',
      registers,
      collect() {
        let n = 0;
        for (const s of sources) n += s.stats().waiting;
        this.set(n);
      },
    });
    new Gauge({
      name: 'pgwake_gateway_checkout_maxwait_seconds',
      help: "How long the oldest checkout still waiting has waited (PgBouncer's maxwait); 0 when none waits.",
      registers,
      collect() {
        let oldest = Infinity;
        for (const s of sources) oldest = Math.min(oldest, s.oldestCheckoutWaitStartedAt() ?? Infinity);
        this.set(oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest) / 1000);
      },
    });
    const activities = this.activities;
    new Gauge({
      name: 'pgwake_gateway_client_connections',
      help: "Authenticated client connections by state, as PgBouncer names them: active (a checkout in flight: a transaction, or a session-mode request), waiting (queued for a server connection: PgBouncer's cl_waiting), idle (connected, holding nothing).",
      labelNames: ['state'],
      registers,
      collect() {
        const t = clientStates(activities).total;
        for (const [state, n] of Object.entries(t)) this.set({ state }, n);
      },
    });
    if (perDbLimit > 0) {
      const labelled = new PerDbLabels(perDbLimit);
      new Gauge({
        name: 'pgwake_gateway_db_client_connections',
        help: `Client connections by db and state (as pgwake_gateway_client_connections), for the first ${perDbLimit} dbs with clients (PGWAKE_METRICS_PER_DB_LIMIT); the rest summed under db_id="other".`,
        labelNames: ['db_id', 'state'],
        registers,
        collect() {
          this.reset(); // a db that left its slot leaves no stale series
          const byDb = clientStates(activities).byDb;
          labelled.keepOnly(byDb.keys());
          const out = new Map<string, Record<ClientState, number>>();
          for (const [dbId, states] of byDb) {
            const label = labelled.label(dbId);
            const sum = out.get(label) ?? { active: 0, waiting: 0, idle: 0 };
            for (const k of Object.keys(sum) as ClientState[]) sum[k] += states[k];
            out.set(label, sum);
          }
          for (const [db_id, states] of out) for (const [state, n] of Object.entries(states)) this.set({ db_id, state }, n);
        },
      });
    }
    new Gauge({
      name: 'pgwake_gateway_server_connections',
      help: "Pooled server connections by state: idle (PgBouncer's sv_idle), active (with a client or being reset: sv_active), opening (logging in: sv_login).",
      labelNames: ['state'],
      registers,
      collect() {
        const t = { idle: 0, active: 0, opening: 0 };
        for (const s of sources) {
          const st = s.stats();
          t.idle += st.idle;
          t.active += st.active;
          t.opening += st.opening;
        }
        for (const [state, n] of Object.entries(t)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'pgwake_gateway_frozen_dbs',
      help: 'Dbs whose new checkouts are frozen on this gateway now.',
      registers,
      collect() {
        let n = 0;
        for (const s of sources) n += s.frozenDbs();
        this.set(n);
      },
    });
    const relayed = this.relayed;
    const flushed: RelayedBytes = { clientToCompute: 0, computeToClient: 0 };
    new Counter({
      name: 'pgwake_gateway_bytes_total',
      help: 'Bytes relayed between clients and computes.',
      labelNames: ['direction'],
      registers,
      collect() {
        countLiveBytes();
        this.inc({ direction: 'client_to_compute' }, relayed.clientToCompute - flushed.clientToCompute);
        this.inc({ direction: 'compute_to_client' }, relayed.computeToClient - flushed.computeToClient);
        flushed.clientToCompute = relayed.clientToCompute;
        flushed.computeToClient = relayed.computeToClient;
      },
    });
  }

  /** A checkout got its server connection, after `waitSeconds` in the queue (null: at once). Plain counting on the hot path; prom-client reads it at scrape. */
  checkoutServed(waitSeconds: number | null): void {
    this.#served++;
    if (waitSeconds !== null) this.checkoutWaitSeconds.observe(waitSeconds);
  }

  /** A wake this gateway asked for ended after `seconds`. */
  wakeEnded(result: WakeResult, seconds: number): void {
    this.wakes.inc({ result });
    this.wakeRequestSeconds.observe(seconds);
  }

  checkoutTimedOut(): void {
    this.#timedOut++;
  }

  outcome(outcome: ConnectionOutcome): void {
    this.connections.inc({ outcome });
  }

  authFailure(reason: AuthFailureReason | 'timeout'): void {
    this.authFailures.inc({ reason });
  }
}

/** Client states summed over every gateway on the registry, in total and per db. */
function clientStates(activities: Iterable<ClientActivitySource>): { total: Record<ClientState, number>; byDb: Map<string, Record<ClientState, number>> } {
  const total = { active: 0, waiting: 0, idle: 0 };
  const byDb = new Map<string, Record<ClientState, number>>();
  for (const source of activities) {
    for (const [dbId, a] of Object.entries(source.snapshot())) {
      const waiting = a.checkoutsWaiting ?? 0;
      const states = { active: a.checkoutsInFlight, waiting, idle: Math.max(0, a.clientConnections - a.checkoutsInFlight - waiting) };
      const sum = byDb.get(dbId) ?? { active: 0, waiting: 0, idle: 0 };
      for (const k of Object.keys(states) as ClientState[]) {
        sum[k] += states[k];
        total[k] += states[k];
      }
      byDb.set(dbId, sum);
    }
  }
  return { total, byDb };
}

/**
 * Which dbs get a `db_id` label of their own: the first `limit` seen, each keeping
 * its slot while it stays in view; every other db is `other`. So the series stay
 * bounded by configuration, whatever the number of dbs.
 */
export class PerDbLabels {
  #slots = new Set<string>();

  constructor(private readonly limit: number) {}

  /** Frees the slots of dbs no longer in view. */
  keepOnly(inView: Iterable<string>): void {
    const keep = new Set(inView);
    for (const id of this.#slots) if (!keep.has(id)) this.#slots.delete(id);
  }

  label(dbId: string): string {
    if (this.#slots.has(dbId)) return dbId;
    if (this.#slots.size < this.limit) {
      this.#slots.add(dbId);
      return dbId;
    }
    return 'other';
  }
}
