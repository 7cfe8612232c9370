import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DB_STATES, type DbRecord } from '../core/index.js';

export type SuspendReason = 'idle' | 'request' | 'shutdown';

export interface AutoscalerMetricSources {
  liveDbs(): Promise<DbRecord[]>;
  runningComputes(): number;
}

/** The autoscaler's `pgwake_` metrics. No per-db labels: a deployment's dbs are unbounded. */
export class AutoscalerMetrics {
  readonly computeStarts: Counter<'result'>;
  readonly computeStartSeconds: Histogram;
  readonly provisionSeconds: Histogram<'result'>;
  readonly suspends: Counter<'reason'>;
  readonly computeExits: Counter;
  readonly handoffs: Counter<'result' | 'reason'>;
  readonly handoffSeconds: Histogram<'result'>;
  readonly handoffFreezeSeconds: Histogram;
  readonly scaleDecisions: Counter<'direction'>;

  constructor(registry: Registry, sources: AutoscalerMetricSources) {
    // A role restarted on the same registry replaces its metrics rather than failing on duplicates.
    for (const name of ['pgwake_compute_starts_total', 'pgwake_compute_start_seconds', 'pgwake_db_provision_seconds', 'pgwake_suspends_total', 'pgwake_compute_unexpected_exits_total', 'pgwake_dbs', 'pgwake_computes_running', 'pgwake_handoffs_total', 'pgwake_handoff_seconds', 'pgwake_handoff_freeze_seconds', 'pgwake_scale_decisions_total']) {
      registry.removeSingleMetric(name);
    }
    const registers = [registry];
    this.computeStarts = new Counter({ name: 'pgwake_compute_starts_total', help: 'Writer starts (wakes), by result.', labelNames: ['result'], registers });
    this.computeStartSeconds = new Histogram({
      name: 'pgwake_compute_start_seconds',
      help: 'Time from asking the driver to start a writer until it accepts connections.',
      buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.provisionSeconds = new Histogram({
      name: 'pgwake_db_provision_seconds',
      help: 'Time to create a db: copy the template, create role and database, stop.',
      labelNames: ['result'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.suspends = new Counter({ name: 'pgwake_suspends_total', help: 'Writers suspended, by why: idle, request (API or operator), shutdown.', labelNames: ['reason'], registers });
    this.computeExits = new Counter({ name: 'pgwake_compute_unexpected_exits_total', help: 'Writers that ended without being asked to (crash, kill).', registers });
    this.handoffs = new Counter({
      name: 'pgwake_handoffs_total',
      help: 'Profile handoffs ended, by result (stable, failed) and scale_failure_reason (none when stable).',
      labelNames: ['result', 'reason'],
      registers,
    });
    this.handoffSeconds = new Histogram({
      name: 'pgwake_handoff_seconds',
      help: 'Time from PREPARING to STABLE or FAILED.',
      labelNames: ['result'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.handoffFreezeSeconds = new Histogram({
      name: 'pgwake_handoff_freeze_seconds',
      help: 'Freeze window of finished handoffs: FROZEN written to the freeze lifted with the new route.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.scaleDecisions = new Counter({ name: 'pgwake_scale_decisions_total', help: 'Handoffs the scaling policy asked for, by direction (up, down).', labelNames: ['direction'], registers });
    new Gauge({
      name: 'pgwake_computes_running',
      help: 'Writers this autoscaler runs right now.',
      registers,
      collect() {
        this.set(sources.runningComputes());
      },
    });
    new Gauge({
      name: 'pgwake_dbs',
      help: 'Dbs by lifecycle state (deleted ones not counted).',
      labelNames: ['state'],
      registers,
      async collect() {
        let dbs: DbRecord[];
        try {
          dbs = await sources.liveDbs();
        } catch {
          return; // catalog unreachable: leave the last values rather than fail the scrape
        }
        const counts = new Map<string, number>(DB_STATES.filter((s) => s !== 'deleted').map((s) => [s, 0]));
        for (const db of dbs) counts.set(db.state, (counts.get(db.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }
}
