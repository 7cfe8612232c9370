import type { ProfileName } from './profiles.js';

/** A database's life (DESIGN §3). */
export const DB_STATES = ['creating', 'suspended', 'starting', 'running', 'suspending', 'deleting', 'deleted', 'failed'] as const;
export type DbState = (typeof DB_STATES)[number];

/** The profile handoff (DESIGN §3). */
export const SCALE_STATES = ['STABLE', 'PREPARING', 'CATCHING_UP', 'FROZEN', 'CUTOVER', 'FAILED'] as const;
export type ScaleState = (typeof SCALE_STATES)[number];
/** A handoff in one of these stages can still be cancelled (rolled back); from CUTOVER on it finishes. */
export const CANCELLABLE_SCALE_STATES: readonly ScaleState[] = ['PREPARING', 'CATCHING_UP', 'FROZEN'];

export const POOL_MODES = ['session', 'transaction'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

export type HandoffTimeoutAction = 'rollback' | 'force';

/** Which state a db may move to from which: anything else is a bug or a lost race. */
const DB_TRANSITIONS: Record<DbState, readonly DbState[]> = {
  creating: ['suspended', 'failed', 'deleting'],
  suspended: ['starting', 'deleting'],
  starting: ['running', 'failed', 'suspended', 'deleting'],
  running: ['suspending', 'failed', 'deleting'],
  suspending: ['suspended', 'failed', 'deleting'],
  failed: ['starting', 'suspended', 'deleting'],
  deleting: ['deleted'],
  deleted: [],
};

export function canTransition(from: DbState, to: DbState): boolean {
  return DB_TRANSITIONS[from].includes(to);
}

/** A db row as every role sees it. Timestamps are ISO strings; absent values are null, never missing. */
export interface DbRecord {
  id: string;
  account_id: string;
  tenant_id: string;
  tenant: string;
  name: string;
  state: DbState;
  size: ProfileName;
  current_scale: number;
  target_scale: number;
  current_profile: ProfileName;
  target_profile: ProfileName;
  candidate_profile: ProfileName | null;
  candidate_worker_id: string | null;
  candidate_writer_term: number | null;
  writer_term: number;
  scale_state: ScaleState;
  freeze_new_checkouts: boolean;
  /** Bumped by every freeze; a gateway acknowledges the generation it applied (DbActivity.freezeGeneration). */
  freeze_generation: number;
  lease_control_epoch: number;
  autoscale_cooldown_until: string | null;
  scale_phase_started_at: string | null;
  scale_phase_deadline_at: string | null;
  scale_failure_reason: string | null;
  suspend_timeout_seconds: number;
  pool_mode: PoolMode;
  pool_size: number | null;
  handoff_timeout_action: HandoffTimeoutAction;
  /** Autoscaling limits: the policy keeps a running db within them; null leaves it at its size. */
  min_profile: ProfileName | null;
  max_profile: ProfileName | null;
  failure_reason: string | null;
  /** Where the writer listens while running; null otherwise. Internal: never shown to API clients. */
  compute_host: string | null;
  compute_port: number | null;
  /** The writer's Unix-domain socket on its machine, when it has one short enough to use; null otherwise. Internal like host/port. */
  compute_socket_path: string | null;
  worker_id: string | null;
  created_at: string;
  updated_at: string;
}

/** What the gateway needs to reach a running writer. */
export interface Route {
  dbId: string;
  host: string;
  port: number;
  writerTerm: number;
  /** The writer's Unix-domain socket: usable instead of host/port by a gateway on the writer's machine. */
  socketPath?: string;
}

export function routeOf(db: DbRecord): Route | null {
  if (db.state !== 'running' || db.compute_host === null || db.compute_port === null) return null;
  const route: Route = { dbId: db.id, host: db.compute_host, port: db.compute_port, writerTerm: db.writer_term };
  // Null, or absent in a DbChanged from a process that predates the column.
  if (db.compute_socket_path) route.socketPath = db.compute_socket_path;
  return route;
}
