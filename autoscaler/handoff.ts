import { setTimeout as sleep } from 'node:timers/promises';
import { CANCELLABLE_SCALE_STATES, PROFILE_NAMES, PROFILES, type Config, type DbPatch, type DbRecord, type DbUpdateGuard, type Logger, type ProfileName, type RoleContext, type ScaleState } from '../core/index.js';
import { NO_ROUTE, routePatchOf, type ComputeDriver, type ComputeStatus } from './compute-driver.js';
import { gatewaysHoldingFreeze, waitForFreezeBarrier } from './freeze-barrier.js';
import type { Lsn } from './lsn.js';
import type { AutoscalerMetrics, HandoffFreezeStep } from './metrics.js';

/** Why a handoff ended in FAILED, as `scale_failure_reason` says it. */
export const SCALE_FAILURE = {
  candidateStartTimeout: 'candidate_start_timeout',
  candidateStartFailed: 'candidate_start_failed',
  candidateExited: 'candidate_exited',
  catchupTimeout: 'catchup_timeout',
  catchupFailed: 'catchup_failed',
  drainTimeout: 'drain_timeout',
  fenceFailed: 'fence_failed',
  promoteFailed: 'promote_failed',
  cutoverTimeout: 'cutover_timeout',
  controllerFailover: 'controller_failover',
  controllerStopped: 'controller_stopped',
  cancelled: 'cancelled',
} as const;
export type ScaleFailureReason = (typeof SCALE_FAILURE)[keyof typeof SCALE_FAILURE];

/** Stages a handoff is under way in: a db found in one with no handoff running was left by a controller that is gone. */
export const HANDOFF_STAGES: readonly ScaleState[] = ['PREPARING', 'CATCHING_UP', 'FROZEN', 'CUTOVER'];
/** A handoff can be cancelled before CUTOVER. */
export const CANCELLABLE_STAGES = CANCELLABLE_SCALE_STATES;

/** Where tests may step in (fault injection) and what they see there. */
export type HandoffPoint = 'PREPARING' | 'candidate_copied' | 'CATCHING_UP' | 'FROZEN' | 'CUTOVER' | 'fenced' | 'promoted' | 'adopted';
export interface HandoffHookInfo {
  db: DbRecord;
  writer: ComputeStatus;
  candidate: ComputeStatus;
  /** At `candidate_copied`: the candidate's data directory, a standby not yet started. */
  candidateDataDir?: string;
}
export interface HandoffHooks {
  at?(point: HandoffPoint, info: HandoffHookInfo): void | Promise<void>;
}

export interface HandoffDeps {
  ctx: RoleContext;
  driver: ComputeDriver;
  metrics: AutoscalerMetrics;
  hooks: HandoffHooks;
  /** The acting autoscaler's fencing epoch (DESIGN §3): every write is a compare-and-set on it. */
  epoch(): number;
}

/** How often CATCHING_UP asks the writer how far the candidate replayed. */
const CATCHUP_POLL_MS = 20;

/**
 * The handoff acts this much before a stage's written deadline (at most a tenth
 * of the stage): gateways fail checkouts still waiting once the written deadline
 * passes, so a rollback's lift or a forced cutover's next deadline must land first.
 */
const DEADLINE_LEAD_MS = 250;
/** How long a rollback waits for a step its deadline left behind. */
const LEFT_BEHIND_WAIT_MS = 15_000;

export function profileRank(p: ProfileName): number {
  return PROFILE_NAMES.indexOf(p);
}

/** When the policy may next scale the db down after a handoff from `from` to `to` (scale-ups never wait). */
export function cooldownUntil(config: Config, from: ProfileName, to: ProfileName, now = Date.now()): string {
  const seconds = profileRank(to) > profileRank(from) ? config.scaleDownCooldownAfterUpSeconds : config.scaleDownCooldownAfterDownSeconds;
  return new Date(now + seconds * 1000).toISOString();
}

/**
 * Where the freeze window's time goes, step by step. Test hooks between the
 * steps are left out (`restart`), so the steps add up to the freeze as clients
 * see it only when no hook waits.
 */
class FreezeSteps {
  #last = performance.now();
  /** Once FROZEN is written: where the freeze window starts. */
  #frozenAt = this.#last;
  #steps = new Map<HandoffFreezeStep, number>();

  done(step: HandoffFreezeStep): void {
    const now = performance.now();
    this.#steps.set(step, now - this.#last);
    this.#last = now;
    if (step === 'frozen_write') this.#frozenAt = now;
  }

  restart(): void {
    this.#last = performance.now();
  }

  entries(): [HandoffFreezeStep, number][] {
    return [...this.#steps];
  }

  /** FROZEN written to now. */
  totalMs(): number {
    return performance.now() - this.#frozenAt;
  }
}

/** A handoff stops here; `reason` goes into `scale_failure_reason` unless the db can no longer be written. */
class HandoffFailure extends Error {
  constructor(readonly reason: ScaleFailureReason | 'db_moved' | 'fenced', message: string) {
    super(message);
  }
}

/** Where the handoff is, for what a failure must undo. */
type Reach = 'before_fence' | 'fenced' | 'adopted';

/**
 * One db's writer moving to another profile (DESIGN §3): PREPARING (a candidate
 * starts as a streaming replica) → CATCHING_UP (until its replay lag is under a
 * threshold) → FROZEN (new checkouts wait; the barrier waits for in-flight ones)
 * → CUTOVER (fence the old writer, promote the candidate once it replayed the
 * writer's last WAL, switch route and writer term, lift the freeze) → STABLE.
 * Any failure before the candidate is adopted rolls back to the old writer:
 * FAILED with a reason, freeze lifted, candidate torn down. Every write is a
 * compare-and-set on the fencing epoch read, and names its stage and deadline.
 * Runs inside the db's turn of the controller's queue.
 */
export class ProfileHandoff {
  readonly dbId: string;
  #abort = new AbortController();
  #abortReason: ScaleFailureReason | 'db_moved' | undefined;
  #db: DbRecord;
  #reach: Reach = 'before_fence';
  /** Past the CUTOVER write: a cancel can no longer land (the API's write is guarded on the earlier stages). */
  #pastCancel = false;
  #log: Logger;
  #started = performance.now();
  /** The current stage's deadline, ms since epoch, and its signal. */
  #deadlineAt = 0;
  #signal: AbortSignal = new AbortController().signal;
  #stageTimer: NodeJS.Timeout | undefined;
  /** A step the deadline left behind: the rollback waits for it before tearing down what it may still make. */
  #leftBehind: Promise<unknown> | undefined;

  constructor(private readonly deps: HandoffDeps, db: DbRecord, readonly to: ProfileName) {
    this.dbId = db.id;
    this.#db = db;
    this.#log = deps.ctx.logger.child({ component: 'handoff', db_id: db.id, from: db.current_profile, to });
  }

  /** Stops the handoff at its next step; it rolls back while it still can. */
  abort(reason: ScaleFailureReason | 'db_moved'): void {
    if (this.#pastCancel && reason === SCALE_FAILURE.cancelled) return;
    this.#abortReason ??= reason;
    this.#abort.abort();
  }

  /** Runs the handoff to STABLE or FAILED; the row as last written, or null when it could not be written (deleted, or a newer autoscaler acts). */
  async run(): Promise<DbRecord | null> {
    const { ctx, driver } = this.deps;
    const config = ctx.config;
    const from = this.#db.current_profile;
    const term = this.#db.writer_term + 1;
    let stopListening = () => {};
    try {
      await this.#write('PREPARING', { target_profile: this.to, candidate_profile: this.to, candidate_writer_term: term, candidate_worker_id: null, scale_failure_reason: null }, config.handoffPrepareTimeoutMs, { scaleStates: ['STABLE'] });
      stopListening = ctx.coordinator.onDbChanged(({ db }) => {
        if (db.id === this.dbId && !this.#pastCancel && (db.state !== 'running' || db.target_profile !== this.to)) void this.#recheck();
      });
      this.#log.info({ scale_state: 'PREPARING', candidate_writer_term: term }, 'handoff started');

      // PREPARING: the candidate streams from the writer.
      let signal = this.#stageSignal(config.handoffPrepareTimeoutMs);
      await this.#during(signal, SCALE_FAILURE.candidateStartTimeout, SCALE_FAILURE.candidateStartFailed, () => this.#hook('PREPARING'));
      const candidate = await this.#during(signal, SCALE_FAILURE.candidateStartTimeout, SCALE_FAILURE.candidateStartFailed, () =>
        driver.startCandidate({ dbId: this.dbId, profile: PROFILES[this.to], term }, { signal, startTimeoutMs: this.#deadlineAt - Date.now(), beforeStart: (dir) => this.#hook('candidate_copied', dir) }),
      );
      await this.#write(null, { candidate_worker_id: candidate.workerId }, undefined, {}, 'db.scale.candidate_started');

      // CATCHING_UP: on LSN, never on time alone.
      await this.#write('CATCHING_UP', {}, config.handoffCatchupTimeoutMs);
      signal = this.#stageSignal(config.handoffCatchupTimeoutMs);
      await this.#during(signal, SCALE_FAILURE.catchupTimeout, SCALE_FAILURE.catchupFailed, () => this.#hook('CATCHING_UP'));
      await this.#during(signal, SCALE_FAILURE.catchupTimeout, SCALE_FAILURE.catchupFailed, async () => {
        for (;;) {
          if (!driver.describeCandidate(this.dbId).running) throw new HandoffFailure(SCALE_FAILURE.candidateExited, 'the candidate writer exited');
          const p = await driver.candidateProgress(this.dbId);
          this.#log.trace({ lag_bytes: p.lagBytes === null ? null : Number(p.lagBytes), consistent: p.consistent }, 'candidate replay lag');
          if (p.consistent && p.lagBytes !== null && p.lagBytes <= BigInt(config.handoffCatchupLagBytes)) break;
          await sleep(CATCHUP_POLL_MS, undefined, { signal });
        }
      });

      // FROZEN: new checkouts wait everywhere; the barrier waits for the ones in flight.
      const steps = new FreezeSteps();
      const generation = this.#db.freeze_generation + 1;
      await this.#write('FROZEN', { freeze_new_checkouts: true, freeze_generation: generation }, config.handoffDrainTimeoutMs);
      steps.done('frozen_write');
      signal = this.#stageSignal(config.handoffDrainTimeoutMs);
      await this.#during(signal, SCALE_FAILURE.drainTimeout, SCALE_FAILURE.drainTimeout, () => this.#hook('FROZEN'));
      await this.#drain(generation, signal);
      steps.done('drain');

      // CUTOVER
      await this.#write('CUTOVER', {}, config.handoffCutoverTimeoutMs, { scaleStates: ['FROZEN'] });
      steps.done('cutover_write');
      this.#pastCancel = true;
      signal = this.#stageSignal(config.handoffCutoverTimeoutMs);
      await this.#during(signal, SCALE_FAILURE.cutoverTimeout, SCALE_FAILURE.fenceFailed, () => this.#hook('CUTOVER'));
      let fencedAt: Lsn;
      steps.restart();
      try {
        fencedAt = await this.#bounded(driver.fenceWriter(this.dbId, signal), signal);
      } catch (err) {
        this.#reach = 'fenced';
        throw new HandoffFailure(SCALE_FAILURE.fenceFailed, (err as Error).message);
      }
      this.#reach = 'fenced';
      steps.done('fence');
      await this.#during(signal, SCALE_FAILURE.cutoverTimeout, SCALE_FAILURE.promoteFailed, () => this.#hook('fenced'));
      steps.restart();
      // Every commit the old writer acknowledged must reach the candidate before it is promoted.
      await this.#during(signal, SCALE_FAILURE.cutoverTimeout, SCALE_FAILURE.promoteFailed, () => driver.awaitCandidateFlushed(this.dbId, fencedAt, signal));
      steps.done('replay_wait');
      await this.#during(signal, SCALE_FAILURE.cutoverTimeout, SCALE_FAILURE.promoteFailed, () => driver.promoteCandidate(this.dbId, fencedAt, signal));
      steps.done('promote');
      await this.#during(signal, SCALE_FAILURE.cutoverTimeout, SCALE_FAILURE.promoteFailed, () => this.#hook('promoted'));
      steps.restart();
      const endpoint = await driver.adoptCandidate(this.dbId);
      this.#reach = 'adopted';
      steps.done('adopt');
      await this.#hook('adopted');
      steps.restart();
      // One write: the new route and writer term, and the freeze lifted; gateways send waiting checkouts there.
      await this.#write(null, { ...routePatchOf(endpoint), writer_term: term, current_profile: this.to, freeze_new_checkouts: false }, undefined, {}, 'db.scale.route_switched');
      steps.done('route_write');
      const freezeSeconds = steps.totalMs() / 1000;
      this.deps.metrics.handoffFreezeSeconds.observe(freezeSeconds);
      for (const [step, ms] of steps.entries()) this.deps.metrics.handoffStepSeconds.observe({ step }, ms / 1000);
      await driver.finishHandoff(this.dbId).catch((err: Error) => this.#log.warn({ err }, 'could not tidy up after the handoff (the next handoff or restart removes what is left)'));
      const done = await this.#write('STABLE', { candidate_profile: null, candidate_worker_id: null, candidate_writer_term: null, autoscale_cooldown_until: cooldownUntil(config, from, this.to) }, null);
      this.#finished('stable', 'none');
      const ms = (v: number) => Math.round(v * 10) / 10;
      this.#log.info(
        { scale_state: 'STABLE', writer_term: term, freeze_ms: ms(freezeSeconds * 1000), ...Object.fromEntries(steps.entries().map(([step, v]) => [`${step}_ms`, ms(v)])), handoff_ms: Math.round(performance.now() - this.#started) },
        'handoff finished',
      );
      return done;
    } catch (err) {
      clearTimeout(this.#stageTimer);
      return await this.#fail(err);
    } finally {
      clearTimeout(this.#stageTimer);
      stopListening();
    }
  }

  /**
   * Waits on the freeze barrier until the drain deadline. Then `rollback` fails
   * the handoff; `force` ends the writer's client sessions (57P01
   * admin_shutdown, which drivers and poolers treat as retryable) and cuts over.
   */
  async #drain(generation: number, signal: AbortSignal): Promise<void> {
    try {
      await waitForFreezeBarrier(this.deps.ctx.coordinator, this.dbId, generation, signal);
      return;
    } catch (err) {
      if (this.#abort.signal.aborted) throw new HandoffFailure(this.#abortReason!, `handoff ${this.#abortReason}`);
      if (!signal.aborted) throw err;
    }
    const holding = await gatewaysHoldingFreeze(this.deps.ctx.coordinator, this.dbId, generation);
    if (this.#db.handoff_timeout_action !== 'force') {
      throw new HandoffFailure(SCALE_FAILURE.drainTimeout, `checkouts still in flight at the drain deadline (gateways ${holding.join(', ')})`);
    }
    const ended = await this.deps.driver.terminateClientSessions(this.dbId);
    this.#log.warn({ gateways: holding, sessions_ended: ended }, 'drain deadline passed: ending the blocking sessions (57P01) and cutting over');
    await this.#write(null, {}, undefined, {}, 'db.scale.drain_forced');
  }

  /** A CAS write of the db's runtime fields on the epoch read; with `stage`, a new stage with its start and deadline. */
  async #write(stage: ScaleState | null, patch: DbPatch, stageMs: number | null | undefined, guard: Pick<DbUpdateGuard, 'scaleStates'> = {}, type?: string): Promise<DbRecord> {
    const epoch = this.deps.epoch();
    const read = this.#db;
    if (read.lease_control_epoch > epoch) throw new HandoffFailure('fenced', `a newer autoscaler (epoch ${read.lease_control_epoch}) acts on the db`);
    const full: DbPatch = { ...patch, lease_control_epoch: epoch };
    if (stage) {
      const now = Date.now();
      full.scale_state = stage;
      full.scale_phase_started_at = new Date(now).toISOString();
      full.scale_phase_deadline_at = stageMs ? new Date(now + stageMs).toISOString() : null;
    }
    const row = await this.deps.ctx.catalog.dbs.update(this.dbId, full, { ...guard, epoch: read.lease_control_epoch, states: ['running'] }, type ?? `db.scale.${stage!.toLowerCase()}`);
    if (!row) {
      const now = await this.deps.ctx.catalog.dbs.byId(this.dbId);
      if (!now || now.state !== 'running') throw new HandoffFailure('db_moved', `the db is ${now?.state ?? 'gone'}`);
      if (now.lease_control_epoch > epoch) throw new HandoffFailure('fenced', `a newer autoscaler (epoch ${now.lease_control_epoch}) acts on the db`);
      this.#db = now;
      throw new HandoffFailure(SCALE_FAILURE.cancelled, `the db left ${read.scale_state} under the handoff (now ${now.scale_state})`);
    }
    this.#db = row;
    if (stage) this.#log.info({ scale_state: stage, deadline_at: row.scale_phase_deadline_at }, 'handoff stage');
    if (!this.#pastCancel && row.target_profile !== this.to) throw new HandoffFailure(SCALE_FAILURE.cancelled, 'cancelled: the target profile changed');
    return row;
  }

  /** Something changed the row under the handoff: a cancel (target back to current) or a delete stops it. */
  async #recheck(): Promise<void> {
    const db = await this.deps.ctx.catalog.dbs.byId(this.dbId).catch(() => null);
    if (!db || this.#pastCancel) return;
    if (db.state !== 'running') this.abort('db_moved');
    else if (db.target_profile !== this.to) this.abort(SCALE_FAILURE.cancelled);
  }

  /**
   * A stage's deadline (less the lead), or the handoff's abort, whichever comes
   * first. A timer the handoff holds itself: a timeout signal referenced only
   * from inside `AbortSignal.any` can be garbage-collected before it fires.
   */
  #stageSignal(ms: number): AbortSignal {
    const act = Math.max(1, ms - Math.min(DEADLINE_LEAD_MS, Math.floor(ms / 10)));
    this.#deadlineAt = Date.now() + act;
    clearTimeout(this.#stageTimer);
    const stage = new AbortController();
    this.#stageTimer = setTimeout(() => stage.abort(new Error(`stage deadline of ${ms} ms passed`)), act);
    if (this.#abort.signal.aborted) stage.abort(this.#abort.signal.reason);
    else this.#abort.signal.addEventListener('abort', () => stage.abort(this.#abort.signal.reason), { once: true, signal: stage.signal });
    this.#signal = stage.signal;
    return stage.signal;
  }

  /** Runs a step of a stage, naming what went wrong: an abort, the stage's deadline, or the step itself. */
  async #during<T>(signal: AbortSignal, onDeadline: ScaleFailureReason, onError: ScaleFailureReason, step: () => Promise<T>): Promise<T> {
    try {
      return await this.#bounded(step(), signal);
    } catch (err) {
      if (err instanceof HandoffFailure) throw err;
      const message = (err as Error).message.split('\n')[0]!;
      if (this.#abort.signal.aborted) throw new HandoffFailure(this.#abortReason!, `handoff ${this.#abortReason}: ${message}`);
      // A step bounded by the deadline itself (a start timeout) may fail a moment before the signal fires.
      if (signal.aborted || Date.now() >= this.#deadlineAt - 50) throw new HandoffFailure(onDeadline, `deadline passed: ${message}`);
      throw new HandoffFailure(onError, message);
    }
  }

  /**
   * `p`, unless the stage's signal fires first: no step keeps a stage past its
   * deadline. The step itself may go on; the rollback waits for it (bounded).
   */
  #bounded<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) {
      this.#leftBehind = p;
      p.catch(() => undefined);
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#leftBehind = p;
        p.catch(() => undefined);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  async #hook(point: HandoffPoint, candidateDataDir?: string): Promise<void> {
    this.#log.debug({ point }, 'handoff step');
    const at = this.deps.hooks.at;
    if (!at) return;
    const { driver } = this.deps;
    const info = { db: this.#db, writer: driver.describe(this.dbId), candidate: driver.describeCandidate(this.dbId), candidateDataDir };
    // `candidate_copied` runs inside the candidate's start, which is bounded already.
    await (point === 'candidate_copied' ? Promise.resolve(at(point, info)) : this.#bounded(Promise.resolve(at(point, info)), this.#signal));
    if (this.#abort.signal.aborted) throw new HandoffFailure(this.#abortReason!, `handoff ${this.#abortReason}`);
  }

  /**
   * Undoes what the handoff did, in an order that keeps clients waiting least:
   * the freeze is lifted with the FAILED write before the candidate is torn down.
   * A fenced writer is started again first (its route may change port). Once the
   * candidate is adopted there is no way back: the db is left in CUTOVER for the
   * reconcile to finish.
   */
  async #fail(err: unknown): Promise<DbRecord | null> {
    const failure = err instanceof HandoffFailure ? err : new HandoffFailure(SCALE_FAILURE.candidateStartFailed, (err as Error).message);
    const { driver, ctx } = this.deps;
    const log = this.#log.child({ reason: failure.reason, reach: this.#reach });
    if (this.#reach === 'adopted') {
      log.error({ err: failure.message }, 'handoff could not record its cutover; the reconcile will finish it');
      this.#finished('failed', SCALE_FAILURE.cutoverTimeout);
      return null;
    }
    if (failure.reason === 'db_moved' || failure.reason === 'fenced') {
      log.warn({ err: failure.message }, 'handoff stopped: the db can no longer be written by this autoscaler');
      await this.#settleLeftBehind();
      await driver.discardCandidate(this.dbId).catch((e: Error) => log.error({ err: e }, 'could not tear the candidate down'));
      this.#finished('failed', failure.reason === 'fenced' ? SCALE_FAILURE.controllerFailover : 'db_moved');
      return null;
    }
    const reason = failure.reason;
    log.warn({ err: failure.message, scale_state: this.#db.scale_state }, 'handoff failed; rolling back to the old writer');
    const now = Date.now();
    const until = new Date(now + ctx.config.handoffFailureCooldownSeconds * 1000).toISOString();
    const failed: DbPatch = {
      scale_state: 'FAILED',
      scale_failure_reason: reason,
      freeze_new_checkouts: false,
      candidate_worker_id: null,
      autoscale_cooldown_until: until,
      scale_phase_started_at: new Date(now).toISOString(),
      scale_phase_deadline_at: until,
    };
    let row: DbRecord | null = null;
    if (this.#reach === 'before_fence') {
      row = await this.#writeFailed(failed);
      await this.#settleLeftBehind();
      await driver.discardCandidate(this.dbId).catch((e: Error) => log.error({ err: e }, 'could not tear the candidate down'));
    } else {
      await this.#settleLeftBehind();
      await driver.discardCandidate(this.dbId).catch((e: Error) => log.error({ err: e }, 'could not tear the candidate down'));
      try {
        const endpoint = await driver.start({ dbId: this.dbId, profile: PROFILES[this.#db.current_profile] });
        row = await this.#writeFailed({ ...failed, ...routePatchOf(endpoint) });
      } catch (startErr) {
        log.error({ err: startErr }, 'the old writer did not start again after the failed cutover');
        row = await this.#writeFailed({ ...failed, state: 'failed', failure_reason: 'compute_start_failed', current_scale: 0, target_scale: 0, ...NO_ROUTE });
      }
    }
    this.#finished('failed', reason);
    return row;
  }

  /** A step past its deadline may still be making a candidate: let it end (or give up on it) before the teardown. */
  async #settleLeftBehind(): Promise<void> {
    if (!this.#leftBehind) return;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, LEFT_BEHIND_WAIT_MS)));
    await Promise.race([this.#leftBehind.then(() => undefined, () => undefined), giveUp]);
    clearTimeout(timer);
  }

  /** FAILED on the freshest row this autoscaler may still write. */
  async #writeFailed(patch: DbPatch): Promise<DbRecord | null> {
    const epoch = this.deps.epoch();
    const fresh = await this.deps.ctx.catalog.dbs.byId(this.dbId);
    if (!fresh || fresh.lease_control_epoch > epoch) return null;
    const row = await this.deps.ctx.catalog.dbs.update(this.dbId, { ...patch, lease_control_epoch: epoch }, { epoch: fresh.lease_control_epoch, states: ['running'], scaleStates: HANDOFF_STAGES }, 'db.scale.failed');
    if (row) this.#log.info({ scale_state: row.scale_state, reason: row.scale_failure_reason }, 'handoff stage');
    return row;
  }

  #finished(result: 'stable' | 'failed', reason: ScaleFailureReason | 'db_moved' | 'none'): void {
    this.deps.metrics.handoffs.inc({ result, reason });
    this.deps.metrics.handoffSeconds.observe({ result }, (performance.now() - this.#started) / 1000);
  }
}
