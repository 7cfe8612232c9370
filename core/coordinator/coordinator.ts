import type { DbRecord } from '../lifecycle.js';

/** A db's row changed in the catalog: route, state, freeze, delete. Every gateway and autoscaler hears it. */
export interface DbChanged {
  db: DbRecord;
}

/** An event row was appended: SSE streams read the catalog from their last id. */
export interface EventAppended {
  accountId: string;
  eventId: number;
}

/** What one gateway reports about one db: what the autoscaler's idle and load decisions read. */
export interface DbActivity {
  /** Client connections routed to this db (waiting for a wake included). */
  clientConnections: number;
  /** Server connections checked out right now (transaction mode), or session connections in use. */
  checkoutsInFlight: number;
  /** Open transactions (idle in transaction included). */
  openTransactions: number;
  /** When this gateway last saw client traffic for the db, ms since epoch. */
  lastActivityAt: number;
  /**
   * The freeze generation this gateway has applied for the db (its new checkouts wait),
   * or null when it holds no freeze. A freeze barrier waits for every live gateway to
   * report the current generation with zero checkouts in flight.
   */
  freezeGeneration?: number | null;
  /** Checkouts waiting for a server connection right now (transaction pool full); a load signal for the autoscaler. */
  checkoutsWaiting?: number;
}

/** A lease held by one process; `epoch` grows with every new holder (fencing, DESIGN §3). */
export interface Lease {
  name: string;
  holder: string;
  epoch: number;
  expiresAt: number;
}

export interface ActivityReport {
  gatewayId: string;
  dbs: Record<string, DbActivity>;
}

export type Unsubscribe = () => void;

/**
 * What the gateway and control API ask of the autoscaler, the only caller of compute drivers.
 * `sync_roles`: make a running compute's roles match the catalog's `roles` of its db
 * (a compute that does not run gets them at its next start).
 */
export type ControlAction = 'provision' | 'wake' | 'suspend' | 'delete' | 'sync_roles';

export interface ControlRequest {
  action: ControlAction;
  dbId: string;
}

export class ControlRequestError extends Error {
  constructor(message: string, readonly code: 'timeout' | 'failed' | 'no_autoscaler') {
    super(message);
  }
}

/**
 * How roles talk without importing each other (DESIGN §2). Two implementations:
 * in-process (Maps and an EventEmitter) and Redis.
 */
export interface Coordinator {
  publishDbChanged(msg: DbChanged): void;
  onDbChanged(listener: (msg: DbChanged) => void): Unsubscribe;

  publishEventAppended(msg: EventAppended): void;
  onEventAppended(listener: (msg: EventAppended) => void): Unsubscribe;

  /**
   * The autoscaler serves control requests. `requestControl` resolves when the
   * handler finished (a wake: the db is running), and rejects with a
   * ControlRequestError otherwise. Identical requests in flight share one call
   * (across processes too). With nothing serving, in-process says `no_autoscaler`
   * at once; over Redis the request waits for a server (an autoscaler taking the
   * lease over) until its timeout, then says `no_autoscaler`.
   */
  serveControlRequests(handler: (req: ControlRequest) => Promise<void>): Unsubscribe;
  requestControl(req: ControlRequest, timeoutMs: number): Promise<void>;

  /** One call of `fn` per key at a time across every process; other callers share its result. */
  singleFlight<T>(key: string, fn: () => Promise<T>): Promise<T>;

  /** Each gateway reports its activity; a report lapses after `ttlMs` unless renewed. */
  reportActivity(report: ActivityReport, ttlMs: number): Promise<void>;
  /** Activity per db id, summed over every live gateway. */
  activity(): Promise<Map<string, DbActivity>>;
  /** The latest report of each live gateway (its heartbeat not lapsed): what a freeze barrier waits on. */
  gatewayReports(): Promise<ActivityReport[]>;

  /**
   * Takes the lease `name` for `holder` if it is free or lapsed (a new epoch) or already
   * held by `holder` (same epoch, renewed). Null when another holder has it.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | null>;
  /** Extends a held lease; false when it was lost (lapsed and taken, or released). */
  renewLease(lease: Lease, ttlMs: number): Promise<boolean>;
  releaseLease(lease: Lease): Promise<void>;

  /**
   * Called after the coordinator lost its link to the other processes and got it back
   * (Redis restarted or the network blipped): messages published meanwhile were missed,
   * so a listener re-reads what it caches (a gateway: the catalog's routes). Never
   * called in-process, where nothing can be missed.
   */
  onReconnect(listener: () => void): Unsubscribe;

  /**
   * Cancel-key routing (DESIGN §4): a CancelRequest may reach any gateway. The gateway
   * that issued a BackendKeyData registers its key here; another gateway that gets a
   * CancelRequest it does not know forwards it, and the owner's `onCancelForwarded`
   * handler receives the key, checks it and cancels on its compute.
   * `key` is opaque to the coordinator: `cancelKeyHex(processId, secretKey)` makes one.
   * A registration lapses after `ttlMs` (so a dead gateway's keys go); registering
   * the same key again renews it.
   */
  registerCancelKey(key: string, gatewayId: string, ttlMs: number): Promise<void>;
  unregisterCancelKey(key: string): Promise<void>;
  /** Hands `key` to the gateway that registered it; false when no live gateway owns it. */
  forwardCancel(key: string): Promise<boolean>;
  /** Receives the keys other gateways forward to `gatewayId`. */
  onCancelForwarded(gatewayId: string, handler: (key: string) => void): Unsubscribe;

  close(): Promise<void>;
}

/** The routing key of a client's cancel key: the 8 bytes of BackendKeyData (process id, secret), as hex. */
export function cancelKeyHex(processId: number, secretKey: Buffer | number): string {
  const buf = Buffer.alloc(8);
  buf.writeInt32BE(processId | 0, 0);
  if (typeof secretKey === 'number') buf.writeInt32BE(secretKey | 0, 4);
  else secretKey.copy(buf, 4, 0, 4);
  return buf.toString('hex');
}

/** The process id and secret of a key made by `cancelKeyHex`. */
export function parseCancelKeyHex(key: string): { processId: number; secretKey: Buffer } {
  const buf = Buffer.from(key, 'hex');
  if (buf.length !== 8) throw new Error('a cancel key is 8 bytes of hex');
  return { processId: buf.readInt32BE(0), secretKey: buf.subarray(4) };
}

export function sumActivity(into: DbActivity | undefined, add: DbActivity): DbActivity {
  if (!into) return { ...add };
  return {
    clientConnections: into.clientConnections + add.clientConnections,
    checkoutsInFlight: into.checkoutsInFlight + add.checkoutsInFlight,
    openTransactions: into.openTransactions + add.openTransactions,
    lastActivityAt: Math.max(into.lastActivityAt, add.lastActivityAt),
    ...(into.checkoutsWaiting !== undefined || add.checkoutsWaiting !== undefined ? { checkoutsWaiting: (into.checkoutsWaiting ?? 0) + (add.checkoutsWaiting ?? 0) } : {}),
  };
}
