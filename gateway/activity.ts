import type { Coordinator, DbActivity, Logger, PoolMode, Unsubscribe } from '../core/index.js';

const REPORT_INTERVAL_MS = 1_000;
/** A report outlives a few missed intervals, not a dead gateway. */
const REPORT_TTL_MS = 5_000;

/** One client connection's share of its db's activity. */
export interface ClientActivity {
  /** A checkout began: a transaction (or, in session mode, a request) is under way on a server connection. */
  checkoutBegan(): void;
  checkoutEnded(): void;
  /** The client's transaction status changed (ReadyForQuery T/E: open; I: not). */
  transaction(open: boolean): void;
  /**
   * Resolves once the coordinator holds a report that shows this db in use. Called
   * before the gateway reads whether the db is running, so an autoscaler that sets
   * `suspending` and then looks at activity again sees this client.
   */
  reported(): Promise<void>;
  /** Whether that report is already there (no wait needed). */
  reportedInUse(): boolean;
  close(): void;
}

interface DbCounters extends DbActivity {
  /** The db's id, one string its clients share (each login reads its own copy from the catalog). */
  dbId: string;
  /** Session-mode clients: each keeps its db awake while connected. */
  sessionClients: number;
}

/** What the tracker asks the rest of the gateway at each report. */
export interface ActivitySources {
  /** The freeze generation applied to a db, or null. */
  freezeGeneration(dbId: string): number | null;
  /** Dbs frozen now (reported even when no client of theirs is here: the barrier waits for every gateway). */
  frozenDbIds(): Iterable<string>;
  /** Checkouts waiting for a server connection, per db. */
  checkoutsWaiting(dbId: string): number;
}

/**
 * Per-db client connections, checkouts in flight and open transactions, reported
 * to the coordinator every second, and at once when a db gets its first client,
 * when a freeze is applied, and whenever the checkouts in flight of a frozen db
 * change (the autoscaler's freeze barrier waits on these). Only client work is
 * counted: nothing the gateway does on its own is activity. In transaction mode
 * a connected client that holds no checkout is not activity (DESIGN §3).
 */
export class ActivityTracker {
  #dbs = new Map<string, DbCounters>();
  #timer: NodeJS.Timeout;
  #reporting: Promise<void> = Promise.resolve();
  /** A report asked for whose snapshot is not taken yet: later askers share it. */
  #queued: Promise<void> | null = null;
  /** Dbs the last report that reached the coordinator showed in use. */
  #reportedBusy = new Set<string>();
  #unsubscribe: Unsubscribe;
  #stopped = false;
  sources: ActivitySources | null = null;

  constructor(private readonly coordinator: Coordinator, readonly gatewayId: string, private readonly logger: Logger) {
    this.#timer = setInterval(() => void this.report(), REPORT_INTERVAL_MS).unref();
    // An idle entry is kept while its db may still be suspended for idleness; after that it says nothing new.
    this.#unsubscribe = coordinator.onDbChanged(({ db }) => {
      const a = this.#dbs.get(db.id);
      if (a && a.clientConnections === 0 && (db.state === 'suspended' || db.state === 'deleted')) this.#dbs.delete(db.id);
    });
  }

  #counters(dbId: string): DbCounters {
    let a = this.#dbs.get(dbId);
    if (!a) {
      a = { dbId, clientConnections: 0, sessionClients: 0, checkoutsInFlight: 0, openTransactions: 0, lastActivityAt: Date.now() };
      this.#dbs.set(dbId, a);
    }
    return a;
  }

  open(dbId: string, mode: PoolMode): ClientActivity {
    const entry = this.#counters(dbId);
    entry.clientConnections++;
    if (mode === 'session') entry.sessionClients++;
    entry.lastActivityAt = Date.now();
    if (entry.clientConnections === 1) void this.report();
    return new OpenClient(this, mode === 'session', entry);
  }

  /** Whether the last report that reached the coordinator showed `dbId` in use. */
  reportedInUse(dbId: string): boolean {
    return this.#reportedBusy.has(dbId);
  }

  /** A checkout of a frozen db began or ended: the freeze barrier hears it at once. */
  frozenChange(dbId: string): void {
    if (this.sources?.freezeGeneration(dbId) != null) void this.report();
  }

  /** What this gateway would report now. */
  snapshot(): Record<string, DbActivity> {
    const now = Date.now();
    const out: Record<string, DbActivity> = {};
    const sources = this.sources;
    for (const [dbId, a] of this.#dbs) {
      // A session-mode client, or a checkout, is activity right now whether or not bytes flow.
      if (a.sessionClients > 0 || a.checkoutsInFlight > 0 || a.openTransactions > 0) a.lastActivityAt = now;
      out[dbId] = {
        clientConnections: a.clientConnections,
        checkoutsInFlight: a.checkoutsInFlight,
        openTransactions: a.openTransactions,
        lastActivityAt: a.lastActivityAt,
        freezeGeneration: sources?.freezeGeneration(dbId) ?? null,
        checkoutsWaiting: sources?.checkoutsWaiting(dbId) ?? 0,
      };
    }
    if (sources) {
      for (const dbId of sources.frozenDbIds()) {
        out[dbId] ??= { clientConnections: 0, checkoutsInFlight: 0, openTransactions: 0, lastActivityAt: 0, freezeGeneration: sources.freezeGeneration(dbId), checkoutsWaiting: 0 };
      }
    }
    return out;
  }

  /**
   * Sends a report whose snapshot is taken after this call. Reports go out one at
   * a time and in order, so an older one never lands after a newer one; callers
   * that ask before the next snapshot is taken share it.
   */
  report(): Promise<void> {
    if (this.#stopped) return this.#reporting;
    if (this.#queued) return this.#queued;
    const next = this.#reporting.then(async () => {
      this.#queued = null;
      const dbs = this.snapshot();
      try {
        await this.coordinator.reportActivity({ gatewayId: this.gatewayId, dbs }, REPORT_TTL_MS);
        this.#reportedBusy.clear();
        for (const [dbId, a] of Object.entries(dbs)) if (this.#isBusy(dbId, a)) this.#reportedBusy.add(dbId);
      } catch (err) {
        this.#reportedBusy.clear();
        this.logger.warn({ err: (err as Error).message }, 'activity report failed');
      }
    });
    this.#queued = next;
    this.#reporting = next;
    return next;
  }

  #isBusy(dbId: string, a: DbActivity): boolean {
    return a.checkoutsInFlight > 0 || a.openTransactions > 0 || (this.#dbs.get(dbId)?.sessionClients ?? 0) > 0;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#unsubscribe();
    await this.report();
    this.#stopped = true;
  }
}

/**
 * One client connection's share of its db's counters: one small object per client
 * (not a closure per method, which the idle clients of a gateway would each keep).
 */
class OpenClient implements ClientActivity {
  #checkedOut = false;
  #inTransaction = false;
  #closed = false;

  constructor(
    private readonly tracker: ActivityTracker,
    private readonly session: boolean,
    private readonly entry: DbCounters,
  ) {}

  checkoutBegan(): void {
    if (this.#checkedOut || this.#closed) return;
    this.#checkedOut = true;
    // No clock read: a report stamps a db with checkouts in flight as active now, and the end of this one stamps it.
    this.entry.checkoutsInFlight++;
    this.tracker.frozenChange(this.entry.dbId);
  }

  checkoutEnded(): void {
    if (!this.#checkedOut) return;
    this.#checkedOut = false;
    this.entry.checkoutsInFlight--;
    this.entry.lastActivityAt = Date.now();
    this.tracker.frozenChange(this.entry.dbId);
  }

  transaction(open: boolean): void {
    if (open === this.#inTransaction || this.#closed) return;
    this.#inTransaction = open;
    this.entry.openTransactions += open ? 1 : -1;
  }

  reported(): Promise<void> {
    return this.tracker.reportedInUse(this.entry.dbId) ? Promise.resolve() : this.tracker.report();
  }

  reportedInUse(): boolean {
    return this.tracker.reportedInUse(this.entry.dbId);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const entry = this.entry;
    entry.clientConnections--;
    if (this.session) entry.sessionClients--;
    if (this.#checkedOut) {
      this.#checkedOut = false;
      entry.checkoutsInFlight--;
      this.tracker.frozenChange(this.entry.dbId);
    }
    if (this.#inTransaction) entry.openTransactions--;
    entry.lastActivityAt = Date.now();
  }
}
