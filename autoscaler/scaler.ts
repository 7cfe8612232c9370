import { INTERNAL_SUPERUSER, type DbActivity, type DbRecord, type Logger, type ProfileName, type RoleContext } from '../core/index.js';
import type { ComputeDriver } from './compute-driver.js';
import type { ComputeController } from './controller.js';
import { HANDOFF_STAGES, ProfileHandoff, SCALE_FAILURE, type HandoffHooks, type ScaleFailureReason } from './handoff.js';
import { recoverHandoff } from './handoff-recovery.js';
import { LoadSampler } from './load-signals.js';
import type { AutoscalerMetrics } from './metrics.js';
import { decideScale, type LoadSample } from './scale-policy.js';

/**
 * Moves running dbs between profiles. A handoff starts when a db's row wants
 * one (`target_profile` ≠ `current_profile` in STABLE: a PATCH, or the policy),
 * heard at once from the coordinator and looked for every
 * `autoscaleIntervalMs`. Each look also samples the load of dbs with
 * autoscaling limits and asks the scaling policy, ends FAILED cooldowns
 * (back to STABLE), and recovers handoffs a dead autoscaler left half-done.
 * Handoffs run in the db's turn of the controller's queue.
 */
export class Scaler {
  #handoffs = new Map<string, ProfileHandoff>();
  #windows = new Map<string, LoadSample[]>();
  #sampler: LoadSampler;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #stopped = false;
  #stopListening: () => void = () => {};
  #log: Logger;

  constructor(
    private readonly ctx: RoleContext,
    private readonly driver: ComputeDriver,
    private readonly controller: ComputeController,
    private readonly metrics: AutoscalerMetrics,
    private readonly epoch: () => number,
    private readonly hooks: HandoffHooks = {},
  ) {
    this.#log = ctx.logger.child({ component: 'scaler' });
    this.#sampler = new LoadSampler(ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER));
  }

  start(): void {
    this.#stopListening = this.ctx.coordinator.onDbChanged(({ db }) => {
      if (wantsHandoff(db)) this.#begin(db.id);
    });
    this.#schedule();
  }

  /** A handoff of ours runs for the db. */
  handingOff(dbId: string): boolean {
    return this.#handoffs.has(dbId);
  }

  /** Every running handoff stops at its next step and rolls back (FAILED `reason`). */
  abortAll(reason: ScaleFailureReason): void {
    for (const h of this.#handoffs.values()) h.abort(reason);
  }

  /** Recovers a half-done handoff left by another autoscaler, in the db's turn. */
  recover(dbId: string): Promise<void> {
    return this.controller.exclusive(dbId, 'recover-handoff', async () => {
      if (this.#handoffs.has(dbId)) return;
      await recoverHandoff(this.ctx, this.driver, dbId, this.epoch(), this.#log);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#stopListening();
    this.abortAll(SCALE_FAILURE.controllerStopped);
    await this.#tick;
    this.#sampler.close();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.look()
        .catch((err: Error) => this.#log.warn({ err }, 'scaling look failed'))
        .finally(() => this.#schedule());
    }, this.ctx.config.autoscaleIntervalMs);
  }

  /** One look at every db. */
  async look(): Promise<void> {
    const dbs = await this.ctx.catalog.dbs.listLive();
    const live = new Set(dbs.map((d) => d.id));
    for (const id of this.#windows.keys()) {
      if (!live.has(id)) this.#forget(id);
    }
    let activity: Map<string, DbActivity> | undefined;
    for (const db of dbs) {
      if (this.#stopped) return;
      if (this.#handoffs.has(db.id)) continue;
      if (HANDOFF_STAGES.includes(db.scale_state)) {
        if (!this.controller.busy(db.id) && db.lease_control_epoch < this.epoch()) this.recover(db.id).catch((err: Error) => this.#log.warn({ err, db_id: db.id }, 'handoff recovery failed'));
        continue;
      }
      if (db.scale_state === 'FAILED') {
        if (db.autoscale_cooldown_until === null || Date.parse(db.autoscale_cooldown_until) <= Date.now()) await this.#stable(db);
        continue;
      }
      if (wantsHandoff(db)) {
        this.#begin(db.id);
        continue;
      }
      if (db.state !== 'running' || db.min_profile === null || db.max_profile === null) {
        this.#forget(db.id);
        continue;
      }
      activity ??= await this.ctx.coordinator.activity();
      await this.#autoscale(db, activity.get(db.id)).catch((err: Error) => this.#log.debug({ err: err.message, db_id: db.id }, 'load sample failed'));
    }
  }

  /** Samples the db's load and asks the policy; a decision becomes the db's target and a handoff. */
  async #autoscale(db: DbRecord, activity: DbActivity | undefined): Promise<void> {
    const sample = await this.#sampler.sample(db.id, this.driver.describe(db.id), activity);
    if (!sample) return;
    const config = this.ctx.config;
    const keepMs = Math.max(config.autoscaleUpWindowSeconds, config.autoscaleDownWindowSeconds) * 1000;
    const window = (this.#windows.get(db.id) ?? []).filter((s) => s.at > sample.at - keepMs);
    window.push(sample);
    this.#windows.set(db.id, window);
    const decision = decideScale({
      now: sample.at,
      current: db.current_profile,
      min: db.min_profile,
      max: db.max_profile,
      cooldownUntil: db.autoscale_cooldown_until === null ? null : Date.parse(db.autoscale_cooldown_until),
      poolMode: db.pool_mode,
      poolSize: db.pool_size,
      samples: window,
      upWindowMs: config.autoscaleUpWindowSeconds * 1000,
      downWindowMs: config.autoscaleDownWindowSeconds * 1000,
    });
    if (decision.kind === 'hold') return;
    const epoch = this.epoch();
    if (db.lease_control_epoch > epoch) return;
    const wanted = await this.ctx.catalog.dbs.update(db.id, { target_profile: decision.to, lease_control_epoch: epoch }, { epoch: db.lease_control_epoch, states: ['running'], scaleStates: ['STABLE'] }, 'db.scale.requested');
    if (!wanted || wanted.target_profile !== decision.to) return;
    this.metrics.scaleDecisions.inc({ direction: decision.kind });
    this.#log.info({ db_id: db.id, from: db.current_profile, to: decision.to, reason: decision.reason }, 'scaling policy asks for a handoff');
    this.#windows.delete(db.id); // the next profile's load is judged afresh
    this.#begin(db.id);
  }

  /** After a FAILED handoff's cooldown: STABLE again at the old profile, free to try again. */
  async #stable(db: DbRecord): Promise<void> {
    const epoch = this.epoch();
    if (db.lease_control_epoch > epoch) return;
    await this.ctx.catalog.dbs.update(
      db.id,
      {
        scale_state: 'STABLE',
        target_profile: db.current_profile,
        candidate_profile: null,
        candidate_worker_id: null,
        candidate_writer_term: null,
        scale_failure_reason: null,
        scale_phase_started_at: new Date().toISOString(),
        scale_phase_deadline_at: null,
        lease_control_epoch: epoch,
      },
      { epoch: db.lease_control_epoch, scaleStates: ['FAILED'] },
      'db.scale.stable',
    );
  }

  #begin(dbId: string): void {
    if (this.#stopped || this.#handoffs.has(dbId)) return;
    this.controller
      .exclusive(dbId, 'handoff', async () => {
        const db = await this.ctx.catalog.dbs.byId(dbId);
        if (this.#stopped || !db || !wantsHandoff(db) || this.#handoffs.has(dbId)) return;
        if (db.lease_control_epoch > this.epoch()) return;
        if (!this.driver.describe(dbId).running) return; // the row says running, the writer is not ours: settle first
        const handoff = new ProfileHandoff({ ctx: this.ctx, driver: this.driver, metrics: this.metrics, hooks: this.hooks, epoch: this.epoch }, db, db.target_profile as ProfileName);
        this.#handoffs.set(dbId, handoff);
        try {
          await handoff.run();
        } finally {
          this.#handoffs.delete(dbId);
          this.#forget(dbId);
        }
      })
      .catch((err: Error) => this.#log.error({ err, db_id: dbId }, 'handoff failed to run'));
  }

  #forget(dbId: string): void {
    this.#windows.delete(dbId);
    this.#sampler.forget(dbId);
  }
}

/** The row asks for a handoff that has not begun. */
function wantsHandoff(db: DbRecord): boolean {
  return db.state === 'running' && db.scale_state === 'STABLE' && db.target_profile !== db.current_profile;
}
