import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AuthFailureReason } from './auth/scram.js';
import type { ConnectionOutcome } from './errors.js';
import { countLiveBytes } from './relay.js';

/** Bytes relayed, read off the sockets' own counters (never per chunk) and handed to prom-client when scraped. */
export interface RelayedBytes {
  clientToCompute: number;
  computeToClient: number;
}

const byRegistry = new WeakMap<Registry, GatewayMetrics>();

/** The gateway's Prometheus metrics (DESIGN §6: `pgwake_` prefix, units in names, no per-db labels). */
export class GatewayMetrics {
  readonly connectionsOpen: Gauge;
  readonly connections: Counter<'outcome'>;
  readonly authFailures: Counter<'reason'>;
  readonly wakeSeconds: Histogram<'kind'>;
  readonly relayed: RelayedBytes = { clientToCompute: 0, computeToClient: 0 };

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

  outcome(outcome: ConnectionOutcome): void {
    this.connections.inc({ outcome });
  }

  authFailure(reason: AuthFailureReason | 'timeout'): void {
    this.authFailures.inc({ reason });
  }
}
