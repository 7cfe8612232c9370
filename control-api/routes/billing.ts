import type { FastifyInstance } from 'fastify';
import type { RoleContext, UsageLine } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { ApiError } from '../errors.js';
import { BEARER, errorResponses } from '../schemas.js';
import { BillingQuery, BillingSummarySchema } from './billing-schemas.js';

/** `GET /v2/billing/summary`: compute-seconds by profile per db for a period, from the usage records. */
export async function billingRoutes(app: FastifyInstance, { ctx }: { ctx: RoleContext }): Promise<void> {
  app.get<{ Querystring: BillingQuery }>(
    '/v2/billing/summary',
    {
      schema: {
        tags: ['billing'],
        summary:
          "Compute-seconds by profile per db in [from, to): the time each writer ran, from the catalog's usage records (a db is billed from `running` until it leaves `running`). Deleted dbs are included",
        security: BEARER,
        querystring: BillingQuery,
        response: { 200: BillingSummarySchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const now = new Date();
      const from = request.query.from ? new Date(request.query.from) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const to = request.query.to ? new Date(request.query.to) : now;
      if (!(from < to)) {
        const problem = 'must be before `to`';
        throw new ApiError(400, 'invalid_request', `from: ${problem}`, { fields: [{ in: 'querystring', field: 'from', problem }] });
      }
      return summarize(from, to, await ctx.catalog.usage.summary(caller.account.id, from, to));
    },
  );
}

function summarize(from: Date, to: Date, lines: UsageLine[]) {
  const byProfile: Record<string, number> = {};
  const dbs = new Map<string, { db_id: string; tenant: string | null; db: string | null; compute_seconds: number; by_profile: Record<string, number> }>();
  for (const line of lines) {
    let db = dbs.get(line.db_id);
    if (!db) dbs.set(line.db_id, (db = { db_id: line.db_id, tenant: line.tenant, db: line.db, compute_seconds: 0, by_profile: {} }));
    db.by_profile[line.profile] = line.compute_seconds;
    db.compute_seconds = ms(db.compute_seconds + line.compute_seconds);
    byProfile[line.profile] = ms((byProfile[line.profile] ?? 0) + line.compute_seconds);
  }
  const total = ms(lines.reduce((sum, l) => sum + l.compute_seconds, 0));
  return { from: from.toISOString(), to: to.toISOString(), compute_seconds: total, by_profile: byProfile, dbs: [...dbs.values()] };
}

/** Rounded to the millisecond, so sums of rounded parts do not show float dust. */
function ms(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
