import type { RoleContext } from '../core/index.js';

/** How the db's last handoff ended: `in_progress` until its first terminal event. */
export type HandoffResult = 'succeeded' | 'failed' | 'in_progress';

export interface LastHandoff {
  result: HandoffResult;
  reason: string | null;
  at: string;
  from_profile: string | null;
  to_profile: string | null;
}

/** What an operator asks first about a db, beside its lifecycle fields: the describe's `live`. */
export interface DbLive {
  client_connections: number;
  checkouts_in_flight: number;
  checkouts_waiting: number;
  open_transactions: number;
  last_wake_seconds: number | null;
  last_wake_at: string | null;
  last_handoff: LastHandoff | null;
}

interface EventRow {
  kind: 'running' | 'starting' | 'prepared' | 'ended';
  type: string;
  data: Record<string, unknown>;
  /** ISO (the catalog parses timestamptz so). */
  created_at: string;
}

/**
 * One statement, four index lookups on events (db_id, type, id): the last
 * `db.running` and the `db.starting` before it (a wake), the last
 * `db.scale.preparing` (a handoff began) and the first terminal event after it.
 * `db.scale.stable` counts as terminal only when no route switch or failure came
 * first: a recovered handoff ends so, while the STABLE after a failure's cooldown
 * comes after its `db.scale.failed`.
 */
const LAST_WAKE_AND_HANDOFF = `
WITH running AS (
  SELECT id, type, data, created_at FROM events WHERE db_id = $1 AND type = 'db.running' ORDER BY id DESC LIMIT 1
), starting AS (
  SELECT e.id, e.type, e.data, e.created_at FROM events e, running r
  WHERE e.db_id = $1 AND e.type = 'db.starting' AND e.id < r.id ORDER BY e.id DESC LIMIT 1
), prepared AS (
  SELECT id, type, data, created_at FROM events WHERE db_id = $1 AND type = 'db.scale.preparing' ORDER BY id DESC LIMIT 1
), ended AS (
  SELECT e.id, e.type, e.data, e.created_at FROM prepared p CROSS JOIN LATERAL (
    (SELECT id, type, data, created_at FROM events WHERE db_id = $1 AND type = 'db.scale.route_switched' AND id > p.id ORDER BY id LIMIT 1)
    UNION ALL
    (SELECT id, type, data, created_at FROM events WHERE db_id = $1 AND type = 'db.scale.failed' AND id > p.id ORDER BY id LIMIT 1)
    UNION ALL
    (SELECT id, type, data, created_at FROM events WHERE db_id = $1 AND type = 'db.scale.stable' AND id > p.id ORDER BY id LIMIT 1)
  ) e ORDER BY e.id LIMIT 1
)
SELECT 'running' AS kind, type, data, created_at FROM running
UNION ALL SELECT 'starting', type, data, created_at FROM starting
UNION ALL SELECT 'prepared', type, data, created_at FROM prepared
UNION ALL SELECT 'ended', type, data, created_at FROM ended`;

const asProfile = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The live figures of one db: activity summed over every live gateway, and its last wake and handoff from the catalog's events. */
export async function dbLive(ctx: RoleContext, dbId: string): Promise<DbLive> {
  const [activity, { rows }] = await Promise.all([ctx.coordinator.activity(), ctx.catalog.pool.query<EventRow>(LAST_WAKE_AND_HANDOFF, [dbId])]);
  const a = activity.get(dbId);
  const row = (kind: EventRow['kind']) => rows.find((r) => r.kind === kind);
  const running = row('running');
  const starting = row('starting');
  const prepared = row('prepared');
  const ended = row('ended');
  let lastHandoff: LastHandoff | null = null;
  if (prepared) {
    const result: HandoffResult = !ended ? 'in_progress' : ended.type === 'db.scale.failed' ? 'failed' : 'succeeded';
    lastHandoff = {
      result,
      reason: result === 'failed' ? asProfile(ended!.data.scale_failure_reason) : null,
      at: (ended ?? prepared).created_at,
      // The PREPARING write holds both ends: the writer's profile and the candidate's.
      from_profile: asProfile(prepared.data.current_profile),
      to_profile: asProfile(prepared.data.candidate_profile),
    };
  }
  return {
    client_connections: a?.clientConnections ?? 0,
    checkouts_in_flight: a?.checkoutsInFlight ?? 0,
    checkouts_waiting: a?.checkoutsWaiting ?? 0,
    open_transactions: a?.openTransactions ?? 0,
    last_wake_seconds: running && starting ? (Date.parse(running.created_at) - Date.parse(starting.created_at)) / 1000 : null,
    last_wake_at: running && starting ? running.created_at : null,
    last_handoff: lastHandoff,
  };
}
