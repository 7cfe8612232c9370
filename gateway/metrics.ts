import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AuthFailureReason } from './auth/scram.js';
import type { ConnectionOutcome } from './errors.js';
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
}

const byRegistry = new WeakMap<Registry, GatewayMetrics>();

/** The gateway's Prometheus metrics (DESIGN §6: `pgwake_` prefix, units in names, no per-db labels). */
export class GatewayMetrics {
  readonly connectionsOpen: Gauge;
  readonly connections: Counter<'outcome'>;
  readonly authFailures: Counter<'reason'>;
  readonly wakeSeconds: Histogram<'kind'>;
  readonly relayed: RelayedBytes = { clientToCompute: 0, computeToClient: 0 };
  readonly checkoutWaitSeconds: Histogram;
  readonly freezeSeconds: Histogram;
  /** Pools and freezes of every gateway on this registry, read when scraped. */
  readonly sources = new Set<PoolMetricsSource>();
  #checkouts: Counter<'outcome'>;
  #served = 0;
  #timedOut = 0;

  /** One set per registry: a second gateway on the same registry (tests, a restart) shares it. */
  static for(registry: Registry): GatewayMetrics {
    let m = byRegistry.get(registry);
    if (!m) {
      m = new GatewayMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  private constructor(registry: Registry) {
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
    this.checkoutWaitSeconds = new Histogram({
      name: 'pgwake_gateway_checkout_wait_seconds',
      help: 'How long transaction-mode checkouts waited for a server connection (freezes included).',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
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
      name: 'pgwake_gateway_server_connections',
      help: 'Pooled server connections by state: idle, active (with a client or being reset), opening.',
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

  /** A checkout got its server connection after `waitSeconds` (plain counting on the hot path; prom-client reads it at scrape). */
  checkoutServed(waitSeconds: number): void {
    this.#served++;
    this.checkoutWaitSeconds.observe(waitSeconds);
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
