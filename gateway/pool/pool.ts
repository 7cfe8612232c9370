import { PROFILES, type DbRecord, type Logger } from '../../core/index.js';
import { connectCompute, type ConnectDeps } from '../connect-compute.js';
import { ClientGone, GatewayError, SQLSTATE } from '../errors.js';
import type { GatewayMetrics } from '../metrics.js';
import type { ComputeLogin } from '../server-connection.js';
import { CheckoutQueue, type Waiter } from './checkout-queue.js';
export type { Waiter } from './checkout-queue.js';
import { handoffTimeout, type Freezes } from './freeze.js';
import { PoolServer } from './pool-server.js';
import { SERVER_RESET_QUERY } from './server-reset.js';

export interface PoolDeps extends ConnectDeps {
  metrics: GatewayMetrics;
  freezes: Freezes;
  checkoutTimeoutMs: number;
  serverIdleTimeoutMs: number;
}

export interface PoolStats {
  idle: number;
  active: number;
  opening: number;
  waiting: number;
}

const JANITOR_MS = 1_000;

/**
 * Server connections for one (role, database): at most `pool_size` of them
 * (the db's, or its profile's default), handed to clients one transaction at a
 * time through a fair queue. A connection comes back when its client's
 * transaction is over; one that may carry session state is reset first, one in
 * doubt is closed, one idle past the idle timeout is closed by the janitor.
 * Connections to a route that is no longer the db's writer are never reused.
 */
export class ServerPool {
  readonly queue: CheckoutQueue;
  #idle: PoolServer[] = [];
  #busy = new Set<PoolServer>();
  #opening = 0;
  #welcome: Buffer[] | null = null;
  #abort = new AbortController();
  #janitor: NodeJS.Timeout;
  #closed = false;
  #log: Logger;

  constructor(
    public db: DbRecord,
    readonly login: ComputeLogin,
    private readonly deps: PoolDeps,
  ) {
    this.#log = deps.logger.child({ db_id: db.id, pool: this.name });
    this.queue = new CheckoutQueue(this.#timedOut);
    this.#janitor = setInterval(() => this.#closeIdle(), Math.min(JANITOR_MS, deps.serverIdleTimeoutMs)).unref();
  }

  /** How the pool is named to clients and operators: database/role. */
  get name(): string {
    return `${this.db.name}/${this.login.user}`;
  }

  get size(): number {
    return Math.max(1, this.db.pool_size ?? PROFILES[this.db.current_profile]?.defaultPoolSize ?? 10);
  }

  get total(): number {
    return this.#idle.length + this.#busy.size + this.#opening;
  }

  get frozen(): boolean {
    return this.deps.freezes.frozen(this.db.id) !== null;
  }

  stats(): PoolStats {
    return { idle: this.#idle.length, active: this.#busy.size, opening: this.#opening, waiting: this.queue.length };
  }

  /**
   * Queues `w` for a server connection, in turn (it may be served at once, synchronously).
   * It waits while none is free or the db is frozen, up to the checkout timeout unless frozen.
   */
  enqueue(w: Waiter): void {
    if (this.#closed) return w.reject(new GatewayError(SQLSTATE.adminShutdown, 'the gateway is shutting down', 'shutting_down'));
    w.deadline = this.frozen ? Infinity : w.enqueuedAt + this.deps.checkoutTimeoutMs;
    this.queue.push(w);
    this.#pump();
  }

  /** A waiter that left (its client closed). */
  cancel(w: Waiter): void {
    this.queue.remove(w);
  }

  /** `enqueue` as a promise, for the gateway's own use (the welcome). */
  checkout(signal: AbortSignal): Promise<PoolServer> {
    return new Promise<PoolServer>((resolve, reject) => {
      if (signal.aborted) return reject(new ClientGone());
      const onAbort = () => {
        if (this.queue.remove(w)) reject(new ClientGone());
      };
      const w: Waiter = {
        enqueuedAt: Date.now(),
        deadline: Infinity,
        resolve: (server) => {
          signal.removeEventListener('abort', onAbort);
          resolve(server);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.enqueue(w);
    });
  }

  /** An idle server connection now, when nobody waits and the db is not frozen; else null (take the queue). */
  takeIdle(): PoolServer | null {
    if (this.queue.length > 0 || this.#closed || this.frozen) return null;
    while (this.#idle.length > 0) {
      const server = this.#idle.pop()!;
      if (server.closed || server.doomed || !this.routeMatches(server)) {
        this.#drop(server);
        continue;
      }
      this.#busy.add(server);
      this.deps.metrics.checkoutServed(null);
      return server;
    }
    return null;
  }

  /** Whether a server connection of this pool has prepared the statement `serverName` and the server accepted it. */
  hasPrepared(serverName: string): boolean {
    for (const s of this.#idle) if (s.statements.confirmed(serverName)) return true;
    for (const s of this.#busy) if (s.statements.confirmed(serverName)) return true;
    return false;
  }

  /** Whether `server` still talks to the db's writer as last heard (routes change on suspend, wake and handoff). */
  routeMatches(server: PoolServer): boolean {
    const route = this.deps.routes.get(this.db.id);
    return route !== undefined && route.host === server.route.host && route.port === server.route.port && route.writerTerm === server.route.writerTerm;
  }

  /** The startup ParameterStatus messages of this pool's servers, for greeting clients (opens one server the first time). */
  async welcome(signal: AbortSignal): Promise<Buffer[]> {
    if (this.#welcome) return this.#welcome;
    const server = await this.checkout(signal);
    this.release(server);
    return this.#welcome ?? server.conn.startupMessages.filter((m) => m[0] === 0x53);
  }

  /** A client's transaction is over: the connection goes back (reset first if it may carry session state). */
  release(server: PoolServer): void {
    // `server` still counts among the busy ones here: more than `size` means one too many.
    if (this.#closed || server.closed || server.doomed || !server.idle || this.total > this.size || !this.routeMatches(server)) {
      this.#busy.delete(server);
      this.#drop(server);
      this.#pump();
      return;
    }
    if (server.cancelling) {
      // A cancel meant for the last client's query must land before anyone else's runs here.
      const held = server.cancelling;
      void held.then(() => {
        if (server.cancelling === held) server.cancelling = null;
        this.release(server);
      });
      return;
    }
    if (server.dirty) {
      this.#reset(server);
      return;
    }
    if (this.queue.length > 0 && !this.frozen) {
      // Straight to the next client in the queue (the usual case of a busy pool): it stays busy.
      this.#serve(this.queue.shift()!, server);
      if (this.queue.length > this.#opening && this.total < this.size) this.#pump();
      return;
    }
    this.#busy.delete(server);
    server.idleSince = Date.now();
    this.#idle.push(server);
    this.#pump();
  }

  /** A connection its client could not leave in a known state (it left mid-transaction): closed. */
  discard(server: PoolServer): void {
    this.#busy.delete(server);
    this.#drop(server);
    this.#pump();
  }

  /** The db row changed: size, route and freeze as the catalog says now. */
  update(db: DbRecord): void {
    this.db = db;
    for (const s of [...this.#idle]) if (!this.routeMatches(s)) this.#drop(s);
    while (this.#idle.length > 0 && this.total > this.size) this.#drop(this.#idle[0]!);
    this.#pump();
  }

  frozenNow(): void {
    this.queue.disarmAll();
  }


  lifted(db: DbRecord | null): void {
    if (db) this.db = db;
    for (const s of [...this.#idle]) if (!this.routeMatches(s)) this.#drop(s);
    this.queue.armAll(this.deps.checkoutTimeoutMs);
    this.#pump();
  }

  deadlinePassed(): void {
    this.queue.failAll(handoffTimeout(this.db.name));
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#janitor);
    this.#abort.abort();
    this.queue.failAll(new GatewayError(SQLSTATE.adminShutdown, 'the gateway is shutting down', 'shutting_down'));
    for (const s of [...this.#idle, ...this.#busy]) s.close();
    this.#idle = [];
    this.#busy.clear();
  }

  #timedOut = (w: Waiter): void => {
    if (this.frozen || !this.queue.remove(w)) return;
    this.deps.metrics.checkoutTimedOut();
    this.#log.info({ waited_ms: Date.now() - w.enqueuedAt }, 'checkout timed out');
    w.reject(
      new GatewayError(
        SQLSTATE.tooManyConnections,
        `pool "${this.name}" is full: no server connection came free within ${this.deps.checkoutTimeoutMs} ms`,
        'compute_unavailable',
        `the pool has ${this.size} server connections, all in use, and ${this.queue.length} more clients waiting`,
        'retry, shorten transactions, or raise pool_size',
      ),
    );
  };

  #pump(): void {
    if (this.#closed || this.frozen) return;
    while (this.queue.length > 0 && this.#idle.length > 0) {
      const server = this.#idle.pop()!;
      if (server.closed || server.doomed || !this.routeMatches(server)) {
        this.#drop(server);
        continue;
      }
      this.#busy.add(server);
      this.#serve(this.queue.shift()!, server);
    }
    while (this.queue.length > this.#opening && this.total < this.size) this.#open();
  }

  #serve(w: Waiter, server: PoolServer): void {
    this.deps.metrics.checkoutServed((Date.now() - w.enqueuedAt) / 1000);
    w.resolve(server);
  }

  #open(): void {
    this.#opening++;
    const startedAt = Date.now();
    connectCompute(this.db, this.login, { ...this.deps, logger: this.#log }, this.#abort.signal).then(
      ({ server: conn }) => {
        this.#opening--;
        const server = new PoolServer(conn, this.deps.metrics.relayed, (s) => this.#gone(s));
        this.#welcome ??= conn.startupMessages.filter((m) => m[0] === 0x53);
        if (this.#closed) return server.close();
        server.idleSince = Date.now();
        this.#idle.push(server);
        this.#pump();
      },
      (err: Error) => {
        this.#opening--;
        if (this.#closed) return;
        this.#log.warn({ err: err.message }, 'could not open a server connection');
        // Everyone already waiting when this attempt began would meet the same failure.
        this.queue.failAll(err instanceof ClientGone ? new GatewayError(SQLSTATE.cannotConnectNow, 'could not connect to the compute', 'compute_unavailable') : err, startedAt);
        this.#pump();
      },
    );
  }

  #reset(server: PoolServer): void {
    server.dirty = false;
    server.query(SERVER_RESET_QUERY).then(
      (r) => {
        server.params.forget();
        if (r.error) {
          this.#log.warn({ err: r.error }, 'server reset failed; closing the connection');
          server.doomed = true;
        }
        this.release(server);
      },
      () => {
        this.#busy.delete(server);
        this.#pump();
      },
    );
  }

  #drop(server: PoolServer): void {
    const i = this.#idle.indexOf(server);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#busy.delete(server);
    server.close();
  }

  #gone(server: PoolServer): void {
    const i = this.#idle.indexOf(server);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#busy.delete(server);
    if (!this.#closed) this.#pump();
  }

  #closeIdle(): void {
    const before = Date.now() - this.deps.serverIdleTimeoutMs;
    for (const s of [...this.#idle]) if (s.idleSince <= before) this.#drop(s);
  }
}
