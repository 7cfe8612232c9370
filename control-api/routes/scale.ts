import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CANCELLABLE_SCALE_STATES, PROFILE_NAMES, publicDb, type DbPatch, type DbRecord, type DbState, type DbUpdateGuard, type ProfileName, type RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { ApiError, conflict, notFound } from '../errors.js';
import { ownedDbById } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { DbIdParams } from './db-schemas.js';

/**
 * A db's profile (DESIGN §3): `size` and the autoscaling limits, changed by
 * PATCH (a running db hands off to a new size: scale_state), and the cancel of
 * a handoff under way.
 */

/** What PATCH /v2/tenants/:tenant/dbs/:db takes besides the db's settings (its schema is in db-schemas.ts). */
export interface ScaleChange {
  size?: ProfileName;
  min_profile?: ProfileName | null;
  max_profile?: ProfileName | null;
  handoff_timeout_action?: 'rollback' | 'force';
}

/** States whose writer is running or on its way up: a new size there is a handoff. */
const WRITER_UP: readonly DbState[] = ['starting', 'running'];
const rank = (p: ProfileName) => PROFILE_NAMES.indexOf(p);

function invalid(field: string, problem: string): ApiError {
  return new ApiError(400, 'invalid_request', `${field}: ${problem}`, { fields: [{ field, problem }] });
}

/**
 * The catalog write a PATCH of size and limits makes, with the guard it needs:
 * a new size for a running db becomes its `target_profile` (the autoscaler
 * hands off to it), only while no handoff is under way; a stopped db simply
 * starts at it. Throws the API error for a size outside the limits, limits the
 * wrong way round, or a handoff in progress.
 */
export function scalePatch(db: DbRecord, change: ScaleChange): { patch: DbPatch; guard: Pick<DbUpdateGuard, 'states' | 'scaleStates'> } {
  const patch: DbPatch = {};
  const guard: Pick<DbUpdateGuard, 'states' | 'scaleStates'> = {};
  if (change.handoff_timeout_action !== undefined) patch.handoff_timeout_action = change.handoff_timeout_action;
  const min = change.min_profile !== undefined ? change.min_profile : db.min_profile;
  const max = change.max_profile !== undefined ? change.max_profile : db.max_profile;
  if ((min === null) !== (max === null)) throw invalid(min === null ? 'min_profile' : 'max_profile', 'min_profile and max_profile are set together (both null: autoscaling off)');
  if (min !== null && max !== null && rank(min) > rank(max)) throw invalid('min_profile', `must not be above max_profile (${max})`);
  if (change.min_profile !== undefined) patch.min_profile = change.min_profile;
  if (change.max_profile !== undefined) patch.max_profile = change.max_profile;
  const size = change.size;
  if (size === undefined) return { patch, guard };
  if (min !== null && max !== null && (rank(size) < rank(min) || rank(size) > rank(max))) throw invalid('size', `must be within the autoscaling limits ${min}..${max}`);
  patch.size = size;
  if (size === db.current_profile && db.target_profile === db.current_profile) return { patch, guard };
  if (db.scale_state !== 'STABLE') {
    const why = db.scale_state === 'FAILED' ? `its last handoff failed (${db.scale_failure_reason}); it may change again after ${db.autoscale_cooldown_until}` : `a handoff is under way (scale_state ${db.scale_state}); cancel it first`;
    throw conflict(`db "${db.name}" cannot change size now: ${why}`, { scale_state: db.scale_state, autoscale_cooldown_until: db.autoscale_cooldown_until });
  }
  guard.scaleStates = ['STABLE'];
  guard.states = [db.state];
  if (WRITER_UP.includes(db.state)) patch.target_profile = size;
  else Object.assign(patch, { current_profile: size, target_profile: size } satisfies DbPatch);
  return { patch, guard };
}

/** How long a cancel waits for the handoff to roll back before it answers 202. */
const CANCEL_WAIT_MS = 10_000;

export async function scaleRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  app.post<{ Params: Static<typeof DbIdParams> }>(
    '/v2/dbs/:id/scale/cancel',
    {
      schema: {
        tags: ['dbs'],
        summary: "Cancel the db's handoff before CUTOVER: it rolls back to the old writer (scale_state FAILED, scale_failure_reason cancelled). 200 once rolled back, 202 if still rolling back",
        security: BEARER,
        params: DbIdParams,
        response: { 200: { $ref: 'Db' }, 202: { $ref: 'Db' }, ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      const db = await ownedDbById(ctx.catalog, callerOf(request), request.params.id);
      // The cancel is the target going back to the current profile, written only in a stage that can still roll back.
      const asked = CANCELLABLE_SCALE_STATES.includes(db.scale_state)
        ? await ctx.catalog.dbs.update(db.id, { target_profile: db.current_profile }, { scaleStates: CANCELLABLE_SCALE_STATES }, 'db.scale.cancel_requested')
        : null;
      if (!asked) {
        const now = (await ctx.catalog.dbs.byId(db.id)) ?? db;
        const why = now.scale_state === 'CUTOVER' ? 'it is past CUTOVER and will finish' : 'no handoff is under way';
        throw conflict(`the handoff of db "${db.name}" cannot be cancelled: ${why}`, { scale_state: now.scale_state });
      }
      request.log.info({ db_id: db.id, scale_state: asked.scale_state }, 'handoff cancel requested');
      const after = await rolledBack(ctx, db.id, CANCEL_WAIT_MS);
      if (!after) throw notFound(`db "${db.name}"`);
      return reply.status(CANCELLABLE_SCALE_STATES.includes(after.scale_state) ? 202 : 200).send(publicDb(after));
    },
  );
}

/** The db once its scale_state left the cancellable stages, or as it is when `ms` passed. */
async function rolledBack(ctx: RoleContext, dbId: string, ms: number): Promise<DbRecord | null> {
  const done = (db: DbRecord | null) => db !== null && !CANCELLABLE_SCALE_STATES.includes(db.scale_state);
  let stop = () => {};
  const heard = new Promise<void>((resolve) => {
    stop = ctx.coordinator.onDbChanged(({ db }) => {
      if (db.id === dbId && done(db)) resolve();
    });
  });
  try {
    const deadline = Date.now() + ms;
    for (;;) {
      const db = await ctx.catalog.dbs.byId(dbId);
      if (!db || done(db) || Date.now() >= deadline) return db;
      await Promise.race([heard, new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))))]);
    }
  } finally {
    stop();
  }
}
