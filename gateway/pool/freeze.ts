import type { Catalog, DbRecord, Logger } from '../../core/index.js';
import { ClientGone, GatewayError } from '../errors.js';

/** A freeze this gateway applied: new checkouts of the db wait until it is lifted. */
export interface Freeze {
  generation: number;
  /** The handoff's `scale_phase_deadline_at` (ms since epoch); waiting past it fails the checkout. */
  deadlineAt: number | null;
  appliedAt: number;
}

export interface FreezeListener {
  frozen(dbId: string, freeze: Freeze): void;
  /** The freeze is over; `db` is the row that lifted it (its route is the writer to use now). */
  lifted(dbId: string, db: DbRecord | null, freeze: Freeze): void;
  /** The handoff's deadline passed while checkouts still waited: they fail now. */
  deadlinePassed(dbId: string, freeze: Freeze): void;
}

/** Retryable: the transaction never started. Clients retry serialization failures. */
export const HANDOFF_SQLSTATE = '40001';

/** How long after its deadline a freeze nobody lifted is lifted here anyway: a db can never stay frozen. */
const ABANDONED_AFTER_MS = 30_000;
const RECHECK_MS = 1_000;
/** The deadline of a freeze whose row names none. */
const UNBOUNDED_FREEZE_MS = 60_000;

interface DbFreeze {
  name: string;
  current: Freeze | null;
  /** The newest generation applied or lifted: anything older (or a repeat) is ignored. */
  seen: number;
  /** The newest generation lifted: a freeze message for it arriving late is ignored. */
  lifted: number;
  timer: NodeJS.Timeout | undefined;
  /** Session-mode clients and connections waiting for the lift, in arrival order. */
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

/**
 * Per-db `freeze_new_checkouts` as the gateway applies it (DESIGN §3 FROZEN,
 * §4 Freeze). Every freeze carries a generation: a late or repeated freeze or lift
 * changes nothing, and a lift for generation g ends every freeze up to g, so
 * messages out of order cannot leave a db frozen. A freeze past its deadline
 * fails the waiting checkouts (retryable); one nobody lifts long after its
 * deadline is lifted here, after a last look at the catalog.
 */
export class Freezes {
  #byDb = new Map<string, DbFreeze>();
  #listeners: FreezeListener[] = [];
  #stopped = false;

  constructor(private readonly catalog: Catalog, private readonly logger: Logger) {}

  listen(listener: FreezeListener): void {
    this.#listeners.push(listener);
  }

  frozen(dbId: string): Freeze | null {
    return this.#byDb.get(dbId)?.current ?? null;
  }

  /** Dbs frozen now, by id. */
  *all(): IterableIterator<[string, Freeze]> {
    for (const [id, f] of this.#byDb) if (f.current) yield [id, f.current];
  }

  /** Every db row the gateway hears of or reads (DbChanged, a client's login). */
  observe(db: DbRecord): void {
    if (this.#stopped) return;
    let f = this.#byDb.get(db.id);
    const generation = Number(db.freeze_generation);
    if (!f) {
      if (!db.freeze_new_checkouts) return;
      f = { name: db.name, current: null, seen: 0, lifted: 0, timer: undefined, waiters: [] };
      this.#byDb.set(db.id, f);
    }
    if (db.freeze_new_checkouts && db.state !== 'deleted' && db.state !== 'deleting') {
      if (generation <= f.lifted) return; // a late freeze whose lift was already seen
      // A freeze without a deadline is bounded anyway: a db can never stay frozen.
      const deadlineAt = db.scale_phase_deadline_at ? Date.parse(db.scale_phase_deadline_at) : (f.current?.generation === generation ? f.current.deadlineAt : Date.now() + UNBOUNDED_FREEZE_MS);
      if (f.current && f.current.generation === generation) {
        // The same freeze, a later phase (FROZEN → CUTOVER): its deadline moves.
        if (deadlineAt !== f.current.deadlineAt) {
          f.current.deadlineAt = deadlineAt;
          this.#arm(db.id, f);
        }
        return;
      }
      if (generation < f.seen) return;
      f.seen = generation;
      f.current = { generation, deadlineAt, appliedAt: Date.now() };
      this.logger.info({ db_id: db.id, freeze_generation: generation, deadline_at: db.scale_phase_deadline_at }, 'freeze applied: new checkouts wait');
      this.#arm(db.id, f);
      for (const l of this.#listeners) l.frozen(db.id, f.current);
      return;
    }
    // Not frozen (or gone): lifts every freeze up to this generation.
    f.lifted = Math.max(f.lifted, generation);
    f.seen = Math.max(f.seen, generation);
    if (f.current && f.current.generation <= generation) this.#lift(db.id, f, db, 'freeze lifted');
  }

  /**
   * Resolves at once when the db is not frozen, else when the freeze is lifted;
   * rejects when the handoff's deadline passes first. Waiters are released in order.
   */
  waitLifted(dbId: string, dbName: string, signal: AbortSignal): Promise<void> {
    const f = this.#byDb.get(dbId);
    const freeze = f?.current;
    if (!f || !freeze) return Promise.resolve();
    if (freeze.deadlineAt !== null && Date.now() >= freeze.deadlineAt) return Promise.reject(handoffTimeout(dbName));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = f.waiters.indexOf(w);
        if (i >= 0) f.waiters.splice(i, 1);
        reject(new ClientGone());
      };
      const w = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err: Error) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      f.waiters.push(w);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const f of this.#byDb.values()) clearTimeout(f.timer);
    this.#byDb.clear();
  }

  #lift(dbId: string, f: DbFreeze, db: DbRecord | null, why: string): void {
    const held = f.current!;
    f.current = null;
    f.lifted = Math.max(f.lifted, held.generation);
    clearTimeout(f.timer);
    f.timer = undefined;
    this.logger.info({ db_id: dbId, freeze_generation: held.generation, frozen_ms: Date.now() - held.appliedAt }, why);
    for (const l of this.#listeners) l.lifted(dbId, db, held);
    for (const w of f.waiters.splice(0)) w.resolve();
  }

  #arm(dbId: string, f: DbFreeze): void {
    clearTimeout(f.timer);
    const freeze = f.current;
    if (!freeze || freeze.deadlineAt === null) return;
    const wait = Math.max(0, freeze.deadlineAt - Date.now());
    f.timer = setTimeout(() => void this.#deadline(dbId, freeze), wait).unref();
  }

  async #deadline(dbId: string, freeze: Freeze): Promise<void> {
    const f = this.#byDb.get(dbId);
    if (!f || f.current !== freeze || this.#stopped) return;
    if (freeze.deadlineAt !== null && Date.now() >= freeze.deadlineAt) {
      for (const l of this.#listeners) l.deadlinePassed(dbId, freeze);
      const err = handoffTimeout(f.name);
      for (const w of f.waiters.splice(0)) w.reject(err);
    }
    // A lift may have been missed: ask the catalog.
    const row = await this.catalog.dbs.byId(dbId).catch(() => undefined);
    if (this.#stopped || f.current !== freeze) return;
    if (row === null) return this.#lift(dbId, f, null, 'freeze lifted: the db is gone');
    if (row) {
      this.observe(row);
      // Lifted, or a later phase with a deadline of its own (armed by observe).
      if (f.current !== freeze || (freeze.deadlineAt !== null && freeze.deadlineAt > Date.now())) return;
    }
    if (freeze.deadlineAt !== null && Date.now() - freeze.deadlineAt > ABANDONED_AFTER_MS) {
      this.logger.error({ db_id: dbId, freeze_generation: freeze.generation }, 'freeze still set long past its deadline; lifted by the gateway');
      return this.#lift(dbId, f, row ?? null, 'freeze lifted by the gateway');
    }
    f.timer = setTimeout(() => void this.#deadline(dbId, freeze), RECHECK_MS).unref();
  }
}

/** What a checkout that waited past the handoff's deadline is told. */
export function handoffTimeout(dbName: string): GatewayError {
  return new GatewayError(
    HANDOFF_SQLSTATE,
    `a handoff of database "${dbName}" to a new writer was in progress and did not finish in time`,
    'compute_unavailable',
    'the transaction did not start: nothing was run',
    'retry the transaction',
  );
}
