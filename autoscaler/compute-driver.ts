import type { Profile, Unsubscribe } from '../core/index.js';

/** What a driver needs to know to run one db's writer. */
export interface ComputeSpec {
  dbId: string;
  profile: Profile;
}

/** Where a started writer accepts connections. */
export interface ComputeEndpoint {
  host: string;
  port: number;
  /** Which worker runs the writer (the catalog's `worker_id`). */
  workerId: string;
}

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
}
