import type { DbPatch, Profile, Unsubscribe } from '../core/index.js';
import type { Lsn } from './lsn.js';

/** What a driver needs to know to run one db's writer. */
export interface ComputeSpec {
  dbId: string;
  profile: Profile;
}

/** Where a started writer accepts connections. */
export interface ComputeEndpoint {
  host: string;
  port: number;
  /** Its Unix-domain socket, for a gateway on the same machine; absent when it has none short enough to use. */
  socketPath?: string;
  /** Which worker runs the writer (the catalog's `worker_id`). */
  workerId: string;
}

/** The catalog fields that publish `endpoint` as the db's route (one write: a gateway never sees half of it). */
export function routePatchOf(endpoint: ComputeEndpoint): DbPatch {
  return { compute_host: endpoint.host, compute_port: endpoint.port, compute_socket_path: endpoint.socketPath ?? null, worker_id: endpoint.workerId };
}

/** The catalog fields of a db with no route. */
export const NO_ROUTE = { compute_host: null, compute_port: null, compute_socket_path: null, worker_id: null } as const satisfies DbPatch;

export interface ComputeStatus {
  dbId: string;
  /** A process of this driver is serving the db right now. */
  running: boolean;
  endpoint: ComputeEndpoint | null;
  pid: number | null;
  /** When the running writer became ready, ms since epoch. */
  startedAt: number | null;
}

/** A writer ended without being asked to (crash, kill -9, OOM). */
export interface ComputeExit {
  dbId: string;
  workerId: string;
  /** Exit code; null when a signal ended it. */
  code: number | null;
  lastLog: string;
}

/** A handoff's candidate: the db's next writer, at its new profile, under the next writer term. */
export interface CandidateSpec extends ComputeSpec {
  term: number;
}

export interface CandidateStartOptions {
  /** Aborted: the handoff was given up (deadline, cancel); the start stops at its next step. */
  signal: AbortSignal;
  /** How long the candidate may take to stream. */
  startTimeoutMs: number;
  /** Called with the candidate's data directory once it is a standby and before it starts (tests inject faults here). */
  beforeStart?: (dataDir: string) => Promise<void>;
}

/** How far a candidate is behind its writer, as the writer sees it. */
export interface ReplicationProgress {
  writerLsn: Lsn;
  /** What the candidate reports it replayed; null while it does not stream. */
  replayLsn: Lsn | null;
  lagBytes: bigint | null;
  /** It replayed past the end of its base backup: it could be promoted. */
  consistent: boolean;
}

/** A running writer the provisioning step may talk to as the internal superuser. */
export type ComputeBootstrap = (endpoint: ComputeEndpoint) => Promise<void>;

/**
 * Starts, stops and describes writers (DESIGN §5). The autoscaler is its only
 * caller and calls it for one db at a time; the driver need not serialize.
 */
export interface ComputeDriver {
  readonly kind: string;
  /**
   * Creates the db's storage and runs `bootstrap` on a writer started just for it,
   * then stops that writer. Idempotent: storage that already exists is kept.
   * Storage appears only once `bootstrap` succeeded.
   */
  provision(spec: ComputeSpec, bootstrap: ComputeBootstrap): Promise<void>;
  isProvisioned(dbId: string): Promise<boolean>;
  /** Starts the writer, or returns the endpoint of the one already running. */
  start(spec: ComputeSpec): Promise<ComputeEndpoint>;
  /** Fast shutdown (nothing committed is lost). Also ends a writer a previous run left behind. */
  stop(dbId: string): Promise<void>;
  /** Stops the writer and removes the db's storage. */
  destroy(dbId: string): Promise<void>;
  describe(dbId: string): ComputeStatus;
  /** Every db with a running writer. */
  running(): ComputeStatus[];
  onExit(listener: (exit: ComputeExit) => void): Unsubscribe;

  // The profile handoff (DESIGN §3), in the order a handoff calls them.

  /** Starts a candidate at its profile as a streaming replica of the running writer; resolves once it streams. */
  startCandidate(spec: CandidateSpec, o: CandidateStartOptions): Promise<ComputeEndpoint>;
  describeCandidate(dbId: string): ComputeStatus;
  candidateProgress(dbId: string): Promise<ReplicationProgress>;
  /** Ends the writer's client sessions (57P01 admin_shutdown: clients may retry); returns how many. */
  terminateClientSessions(dbId: string): Promise<number>;
  /**
   * Fences the writer: from its return on it runs no client session and takes no
   * new connection, so it acknowledges no more commits. Returns where its WAL
   * ends: every commit it acknowledged lies before. It is stopped by
   * finishHandoff, or restarted (unfenced) by `start` after a rollback.
   */
  fenceWriter(dbId: string, signal: AbortSignal): Promise<Lsn>;
  /** Waits until the candidate has received (flushed) the writer's WAL up to `lsn`; throws if it stops running. */
  awaitCandidateFlushed(dbId: string, lsn: Lsn, signal: AbortSignal): Promise<void>;
  /** Promotes the candidate; throws unless it replayed up to `fencedAt`. */
  promoteCandidate(dbId: string, fencedAt: Lsn, signal: AbortSignal): Promise<ComputeEndpoint>;
  /** The promoted candidate becomes the db's writer, its storage the db's. */
  adoptCandidate(dbId: string): Promise<ComputeEndpoint>;
  /** After the new route is out: stops the fenced writer and drops what only the handoff needed (replication credential) and the retired writer's storage. */
  finishHandoff(dbId: string): Promise<void>;
  /** Stops and removes any candidate (and what a crashed run left of one); the writer keeps no WAL for it. */
  discardCandidate(dbId: string): Promise<void>;
  /** The writer term whose candidate storage is the db's now (a handoff finished in storage), or null if none. */
  adoptedTerm(dbId: string): number | null;
}
