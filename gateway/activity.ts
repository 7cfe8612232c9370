import type { Coordinator, DbActivity, Logger, Unsubscribe } from '../core/index.js';

const REPORT_INTERVAL_MS = 1_000;
/** A report outlives a few missed intervals, not a dead gateway. */
const REPORT_TTL_MS = 5_000;

/** One client connection's share of its db's activity. */
export interface ClientActivity {
  /** The session has a server connection now (session mode: for its whole life). */
  serverAttached(): void;
  close(): void;
}

/**
 * Per-db client connections and last activity, reported to the coordinator every
 * second and at once when a db gets its first connection (so a db is not
 * suspended under a client that just arrived). Only client sessions are counted:
 * nothing the gateway does on its own is activity.
 */
export class ActivityTracker {
  #dbs = new Map<string, DbActivity>();
  #timer: NodeJS.Timeout;
  #reporting: Promise<void> = Promise.resolve();
  #unsubscribe: Unsubscribe;
  #stopped = false;

  constructor(private readonly coordinator: Coordinator, readonly gatewayId: string, private readonly logger: Logger) {
    this.#timer = setInterval(() => void this.report(), REPORT_INTERVAL_MS).unref();
    // An idle entry is kept while its db may still be suspended for idleness; after that it says nothing new.
    this.#unsubscribe = coordinator.onDbChanged(({ db }) => {
      const a = this.#dbs.get(db.id);
      if (a && a.clientConnections === 0 && (db.state === 'suspended' || db.state === 'deleted')) this.#dbs.delete(db.id);
    });
  }

  open(dbId: string): ClientActivity {
    let a = this.#dbs.get(dbId);
    if (!a) {
      a = { clientConnections: 0, checkoutsInFlight: 0, openTransactions: 0, lastActivityAt: Date.now() };
      this.#dbs.set(dbId, a);
    }
    const entry = a;
    entry.clientConnections++;
    entry.lastActivityAt = Date.now();
    if (entry.clientConnections === 1) void this.report();
    let attached = false;
    let closed = false;
    return {
      serverAttached: () => {
        if (attached || closed) return;
        attached = true;
        entry.checkoutsInFlight++;
      },
      close: () => {
        if (closed) return;
        closed = true;
        entry.clientConnections--;
        if (attached) entry.checkoutsInFlight--;
        entry.lastActivityAt = Date.now();
      },
    };
  }

  /** What this gateway would report now. */
  snapshot(): Record<string, DbActivity> {
    const now = Date.now();
    const out: Record<string, DbActivity> = {};
    for (const [dbId, a] of this.#dbs) {
      // A session open on this gateway is activity right now, whether or not bytes flow (session mode).
      if (a.clientConnections > 0) a.lastActivityAt = now;
      out[dbId] = { ...a };
    }
    return out;
  }

  report(): Promise<void> {
    if (this.#stopped) return this.#reporting;
    // Reports go out one at a time and in order, so an older one never lands after a newer one.
    this.#reporting = this.#reporting
      .then(() => this.coordinator.reportActivity({ gatewayId: this.gatewayId, dbs: this.snapshot() }, REPORT_TTL_MS))
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'activity report failed'));
    return this.#reporting;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#unsubscribe();
    await this.report();
    this.#stopped = true;
  }
}
