import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { publicDb, type DbState, type RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { requestControl } from '../control-requests.js';
import { conflict } from '../errors.js';
import { ownedDbById } from '../owned.js';
import { BEARER, errorResponses } from '../schemas.js';
import { DbIdParams } from './db-schemas.js';

type DbIdParams = Static<typeof DbIdParams>;

/**
 * Which states each operator action is asked from. A db already where the
 * action leads is answered at once; one being created or deleted is a 409.
 */
const POWER = {
  resume: { action: 'wake', done: 'running', from: ['suspended', 'starting', 'suspending', 'failed'] },
  suspend: { action: 'suspend', done: 'suspended', from: ['running', 'starting', 'suspending', 'failed'] },
} as const satisfies Record<string, { action: 'wake' | 'suspend'; done: DbState; from: readonly DbState[] }>;

/** What an operator uses by hand to start or stop a db's writer; the gateway wakes through the same path. */
export async function dbPowerRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  for (const [verb, rule] of Object.entries(POWER)) {
    app.post<{ Params: DbIdParams }>(
      `/v2/dbs/:id/${verb}`,
      {
        schema: {
          tags: ['dbs'],
          summary: verb === 'resume' ? "Start the db's writer; answers when it runs" : "Stop the db's writer; answers when it is suspended",
          security: BEARER,
          params: DbIdParams,
          response: { 200: { $ref: 'Db' }, ...errorResponses(401, 404, 409, 503, 504) },
        },
      },
      async (request) => {
        const db = await ownedDbById(ctx.catalog, callerOf(request), request.params.id);
        if (db.state === rule.done) return publicDb(db);
        if (!(rule.from as readonly DbState[]).includes(db.state)) {
          throw conflict(`db "${db.name}" is ${db.state}; it cannot ${verb} now`, { state: db.state });
        }
        request.log.info({ db_id: db.id, action: rule.action }, `db ${verb} requested`);
        try {
          await requestControl(ctx, rule.action, db.id);
        } catch (err) {
          // Deleted while we waited: say that, not that the autoscaler failed.
          const now = await ownedDbById(ctx.catalog, callerOf(request), db.id);
          if (now.state === 'deleting') throw conflict(`db "${db.name}" is being deleted`, { state: now.state });
          throw err;
        }
        return publicDb(await ownedDbById(ctx.catalog, callerOf(request), db.id));
      },
    );
  }
}
