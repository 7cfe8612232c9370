import type { Coordinator, DbRecord, Unsubscribe } from '../../core/index.js';
import type { ActivitySources, ActivityTracker } from '../activity.js';
import type { PoolMetricsSource } from '../metrics.js';
import type { ComputeLogin } from '../server-connection.js';
import type { Freezes } from './freeze.js';
import type { PooledClient } from './pooled-client.js';
import { ServerPool, type PoolDeps, type PoolStats } from './pool.js';

/**
 * Every pool of one gateway, keyed by (role, database), and its session-mode
 * clients by db: what a db change, a freeze and its lift reach. Also what the
 * activity reports and the metrics read.
 */
export class ServerPools implements PoolMetricsSource, ActivitySources {
  #pools = new Map<string, ServerPool>();
  #byDb = new Map<string, Set<ServerPool>>();
  #sessions = new Map<string, Set<PooledClient>>();
  #unsubscribe: Unsubscribe;
  #unsubscribeReconnect: Unsubscribe;

  constructor(
    private readonly deps: PoolDeps,
    coordinator: Coordinator,
    private readonly freezes: Freezes,
    private readonly activity: ActivityTracker,
  ) {
    this.#unsubscribe = coordinator.onDbChanged(({ db }) => {
      deps.routes.remember(db);
      freezes.observe(db);
      for (const pool of this.#byDb.get(db.id) ?? []) pool.update(db);
    });
    // Messages published while the coordinator's link was down are lost: read again what pools and freezes hang on.
    this.#unsubscribeReconnect = coordinator.onReconnect(() => void this.#reread());
    freezes.listen({
      frozen: (dbId) => {
        for (const pool of this.#byDb.get(dbId) ?? []) pool.frozenNow();
        for (const client of this.#sessions.get(dbId) ?? []) client.frozenNow();
        void activity.report();
      },
      lifted: (dbId, db, freeze) => {
        deps.metrics.freezeSeconds.observe((Date.now() - freeze.appliedAt) / 1000);
        if (db) deps.routes.remember(db);
        for (const pool of this.#byDb.get(dbId) ?? []) pool.lifted(db);
        for (const client of this.#sessions.get(dbId) ?? []) client.liftedNow();
        void activity.report();
      },
      deadlinePassed: (dbId) => {
        for (const pool of this.#byDb.get(dbId) ?? []) pool.deadlinePassed();
      },
    });
  }

  /** The pool for `login` on `db`, made on first use. */
  get(db: DbRecord, login: ComputeLogin): ServerPool {
    const key = `${login.user}\0${db.id}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new ServerPool(db, login, this.deps);
      this.#pools.set(key, pool);
      let set = this.#byDb.get(db.id);
      if (!set) this.#byDb.set(db.id, (set = new Set()));
      set.add(pool);
    }
    return pool;
  }

  /** A session-mode client of `dbId`, for freezes to hold and move; returns the call that forgets it. */
  addSession(dbId: string, client: PooledClient): () => void {
    let set = this.#sessions.get(dbId);
    if (!set) this.#sessions.set(dbId, (set = new Set()));
    set.add(client);
    return () => {
      set.delete(client);
      if (set.size === 0 && this.#sessions.get(dbId) === set) this.#sessions.delete(dbId);
    };
  }

  stats(): PoolStats {
    const t = { idle: 0, active: 0, opening: 0, waiting: 0 };
    for (const pool of this.#pools.values()) {
      const s = pool.stats();
      t.idle += s.idle;
      t.active += s.active;
      t.opening += s.opening;
      t.waiting += s.waiting;
    }
    return t;
  }

  oldestCheckoutWaitStartedAt(): number | undefined {
    let oldest: number | undefined;
    for (const pool of this.#pools.values()) {
      const at = pool.queue.oldestEnqueuedAt;
      if (at !== undefined && (oldest === undefined || at < oldest)) oldest = at;
    }
    return oldest;
  }

  frozenDbs(): number {
    let n = 0;
    for (const _ of this.freezes.all()) n++;
    return n;
  }

  // ActivitySources
  freezeGeneration(dbId: string): number | null {
    return this.freezes.frozen(dbId)?.generation ?? null;
  }

  *frozenDbIds(): IterableIterator<string> {
    for (const [id] of this.freezes.all()) yield id;
  }

  checkoutsWaiting(dbId: string): number {
    let n = 0;
    for (const pool of this.#byDb.get(dbId) ?? []) n += pool.queue.length;
    return n;
  }

  async #reread(): Promise<void> {
    const ids = new Set([...this.#byDb.keys(), ...this.frozenDbIds()]);
    for (const id of ids) {
      const db = await this.deps.catalog.dbs.byId(id).catch(() => undefined);
      if (!db) continue;
      this.deps.routes.remember(db);
      this.freezes.observe(db);
      for (const pool of this.#byDb.get(id) ?? []) pool.update(db);
    }
  }

  close(): void {
    this.#unsubscribe();
    this.#unsubscribeReconnect();
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
    this.#byDb.clear();
  }
}
