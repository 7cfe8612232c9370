import type { DbPatch, DbRecord, Logger, RoleContext } from '../core/index.js';
import { NO_ROUTE, routePatchOf, type ComputeDriver } from './compute-driver.js';
import { cooldownUntil, HANDOFF_STAGES, SCALE_FAILURE } from './handoff.js';

/** A db with no writer: no route, nothing wanted on. */
const OFF: DbPatch = { current_scale: 0, target_scale: 0, ...NO_ROUTE };

/**
 * A handoff found half-done with no handoff of ours running: its autoscaler
 * died or lost its lease (DESIGN §3: a new leader finishes or rolls back).
 * The storage decides which: if the candidate's data directory is already the
 * db's (it was promoted and adopted), the handoff is finished in the catalog
 * too; otherwise it is rolled back, FAILED with `controller_failover`. Either
 * way nothing of the dead run keeps running: a writer that is not ours is
 * stopped and the db is `suspended` (the next connection wakes it), as after
 * any restart; a writer of ours keeps serving.
 */
export async function recoverHandoff(ctx: RoleContext, driver: ComputeDriver, dbId: string, epoch: number, log: Logger): Promise<DbRecord | null> {
  const db = await ctx.catalog.dbs.byId(dbId);
  if (!db || !HANDOFF_STAGES.includes(db.scale_state) || db.lease_control_epoch > epoch) return db;
  const finished = db.candidate_writer_term !== null && db.candidate_profile !== null && driver.adoptedTerm(dbId) === db.candidate_writer_term;
  const ours = driver.describe(dbId);
  if (!ours.running) await driver.stop(dbId); // a writer a dead process left running in the db's data directory
  await driver.discardCandidate(dbId);
  if (finished) await driver.finishHandoff(dbId);

  const now = Date.now();
  const patch: DbPatch = { lease_control_epoch: epoch, freeze_new_checkouts: false, scale_phase_started_at: new Date(now).toISOString() };
  if (finished) {
    Object.assign(patch, {
      scale_state: 'STABLE',
      current_profile: db.candidate_profile!,
      target_profile: db.candidate_profile!,
      writer_term: db.candidate_writer_term!,
      candidate_profile: null,
      candidate_worker_id: null,
      candidate_writer_term: null,
      scale_failure_reason: null,
      scale_phase_deadline_at: null,
      autoscale_cooldown_until: cooldownUntil(ctx.config, db.current_profile, db.candidate_profile!, now),
    } satisfies DbPatch);
    if (ours.running && ours.endpoint) Object.assign(patch, routePatchOf(ours.endpoint));
  } else {
    const until = new Date(now + ctx.config.handoffFailureCooldownSeconds * 1000).toISOString();
    Object.assign(patch, {
      scale_state: 'FAILED',
      scale_failure_reason: SCALE_FAILURE.controllerFailover,
      candidate_worker_id: null,
      autoscale_cooldown_until: until,
      scale_phase_deadline_at: until,
    } satisfies DbPatch);
  }
  if (!ours.running && ['starting', 'running', 'suspending'].includes(db.state)) Object.assign(patch, { ...OFF, state: 'suspended' });
  const type = finished ? 'db.scale.stable' : 'db.scale.failed';
  const row = await ctx.catalog.dbs.update(dbId, patch, { epoch: db.lease_control_epoch, scaleStates: [db.scale_state] }, type);
  log.warn({ db_id: dbId, was: db.scale_state, outcome: finished ? 'finished' : 'rolled_back', writer_kept: ours.running }, 'recovered a handoff its autoscaler left half-done');
  return row;
}
