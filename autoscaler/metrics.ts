import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DB_STATES, SCALE_STATES, type DbRecord } from '../core/index.js';
import { SCALE_FAILURE } from './handoff.js';

/** The steps of a handoff's freeze window, in order (`pgwake_handoff_step_seconds`). */
export const HANDOFF_FREEZE_STEPS = ['frozen_write', 'drain', 'cutover_write', 'fence', 'replay_wait', 'promote', 'adopt', 'route_write'] as const;
export type HandoffFreezeStep = (typeof HANDOFF_FREEZE_STEPS)[number];

export const SUSPEND_REASONS = ['idle', 'request', 'shutdown'] as const;
export type SuspendReason = (typeof SUSPEND_REASONS)[number];

export interface AutoscalerMetricSources {
  liveDbs(): Promise<DbRecord[]>;
  runningComputes(): number;
  /** The autoscaler lease as this autoscaler holds it; undefined while it waits for it (a standby). */
  lease(): { held: boolean; epoch: number } | undefined;
  /** PGWAKE_METRICS_PER_DB_LIMIT: how many dbs `pgwake_db_info` describes (0: the metric is not made). */
  perDbLimit: number;
}

/** The dbs of one scrape: every gauge read from the catalog shares a single query. */
const CATALOG_READ_REUSE_MS = 500;

/** The autoscaler's `pgwake_` metrics. Per-db labels only for the configured number of dbs: a deployment's dbs are unbounded. */
export class AutoscalerMetrics {
  readonly computeStarts: Counter<'result'>;
  readonly computeStartSeconds: Histogram;
  readonly provisionSeconds: Histogram<'result'>;
  readonly suspends: Counter<'reason'>;
  readonly computeExits: Counter;
  readonly handoffs: Counter<'result' | 'reason'>;
  readonly handoffSeconds: Histogram<'result'>;
  readonly handoffFreezeSeconds: Histogram;
  readonly handoffStepSeconds: Histogram<'step'>;
  readonly scaleDecisions: Counter<'direction'>;

  constructor(registry: Registry, sources: AutoscalerMetricSources) {
    // A role restarted on the same registry replaces its metrics rather than failing on duplicates.
    for (const name of ['pgwake_compute_starts_total', 'pgwake_compute_start_seconds', 'pgwake_db_provision_seconds', 'pgwake_suspends_total', 'pgwake_compute_unexpected_exits_total', 'pgwake_dbs', 'pgwake_dbs_by_scale_state', 'pgwake_db_info', 'pgwake_autoscaler_leader', 'pgwake_autoscaler_lease_control_epoch', 'pgwake_computes_running', 'pgwake_handoffs_total', 'pgwake_handoff_seconds', 'pgwake_handoff_freeze_seconds', 'pgwake_handoff_step_seconds', 'pgwake_scale_decisions_total']) {
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
      help: 'Profile handoffs ended, by result (stable, failed) and reason: the scale_failure_reason describe and events show (none when stable).',
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
    this.handoffStepSeconds = new Histogram({
      name: 'pgwake_handoff_step_seconds',
      help: 'Steps of the freeze window of finished handoffs: where the time between FROZEN and the lift goes.',
      labelNames: ['step'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.scaleDecisions = new Counter({ name: 'pgwake_scale_decisions_total', help: 'Handoffs the scaling policy asked for, by direction (up, down).', labelNames: ['direction'], registers });
    // Known label values start at 0, so the first event is an increase rate() sees (not a series appearing at 1).
    for (const result of ['ok', 'failed']) this.computeStarts.inc({ result }, 0);
    for (const reason of SUSPEND_REASONS) this.suspends.inc({ reason }, 0);
    this.handoffs.inc({ result: 'stable', reason: 'none' }, 0);
    for (const reason of Object.values(SCALE_FAILURE)) this.handoffs.inc({ result: 'failed', reason }, 0);
    for (const result of ['stable', 'failed']) this.handoffSeconds.zero({ result });
    for (const result of ['ok', 'failed']) this.provisionSeconds.zero({ result });
    for (const step of HANDOFF_FREEZE_STEPS) this.handoffStepSeconds.zero({ step });
    for (const direction of ['up', 'down']) this.scaleDecisions.inc({ direction }, 0);
    new Gauge({
      name: 'pgwake_computes_running',
      help: 'Writers this autoscaler runs right now.',
      registers,
      collect() {
        this.set(sources.runningComputes());
      },
    });
    const read = catalogReader(sources);
    new Gauge({
      name: 'pgwake_dbs',
      help: 'Dbs by lifecycle state (deleted ones not counted).',
      labelNames: ['state'],
      registers,
      async collect() {
        const dbs = await read();
        if (!dbs) return; // catalog unreachable: leave the last values rather than fail the scrape
        const counts = new Map<string, number>(DB_STATES.filter((s) => s !== 'deleted').map((s) => [s, 0]));
        for (const db of dbs) counts.set(db.state, (counts.get(db.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'pgwake_dbs_by_scale_state',
      help: 'Dbs by scale_state: STABLE, or where a profile handoff stands (PREPARING, CATCHING_UP, FROZEN, CUTOVER, FAILED).',
      labelNames: ['scale_state'],
      registers,
      async collect() {
        const dbs = await read();
        if (!dbs) return;
        const counts = new Map<string, number>(SCALE_STATES.map((s) => [s, 0]));
        for (const db of dbs) counts.set(db.scale_state, (counts.get(db.scale_state) ?? 0) + 1);
        for (const [scale_state, n] of counts) this.set({ scale_state }, n);
      },
    });
    if (sources.perDbLimit > 0) {
      const limit = sources.perDbLimit;
      new Gauge({
        name: 'pgwake_db_info',
        help: `1 for each of the first ${limit} dbs of the catalog, oldest first (PGWAKE_METRICS_PER_DB_LIMIT), labelled with its state, scale_state and current profile.`,
        labelNames: ['db_id', 'state', 'scale_state', 'profile'],
        registers,
        async collect() {
          const dbs = await read();
          if (!dbs) return;
          this.reset(); // a db whose state changed leaves no series behind
          const oldestFirst = [...dbs].sort((a, b) => +new Date(a.created_at) - +new Date(b.created_at) || a.id.localeCompare(b.id));
          for (const db of oldestFirst.slice(0, limit)) this.set({ db_id: db.id, state: db.state, scale_state: db.scale_state, profile: db.current_profile }, 1);
        },
      });
    }
    new Gauge({
      name: 'pgwake_autoscaler_leader',
      help: 'Whether this autoscaler holds the autoscaler lease and acts (1), or stands by (0).',
      registers,
      collect() {
        this.set(sources.lease()?.held ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pgwake_autoscaler_lease_control_epoch',
      help: 'The fencing epoch this autoscaler writes into dbs.lease_control_epoch while it holds the lease (0 while it stands by). A new leader has a greater one.',
      registers,
      collect() {
        const lease = sources.lease();
        this.set(lease?.held ? lease.epoch : 0);
      },
    });
  }
}

/** Reads the live dbs at most once per scrape; undefined when the catalog does not answer. */
function catalogReader(sources: AutoscalerMetricSources): () => Promise<DbRecord[] | undefined> {
  let last: { at: number; dbs: Promise<DbRecord[] | undefined> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > CATALOG_READ_REUSE_MS) last = { at: now, dbs: sources.liveDbs().catch(() => undefined) };
    return last.dbs;
  };
}
