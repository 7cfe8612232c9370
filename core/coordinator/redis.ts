import { Redis } from 'ioredis';
import { randomId } from '../ids.js';
import type { Logger } from '../logger.js';
import {
  sumActivity,
  type ActivityReport,
  type ControlRequest,
  type Coordinator,
  type DbActivity,
  type DbChanged,
  type EventAppended,
  type Lease,
  type Unsubscribe,
} from './coordinator.js';
import { RedisControlRequests } from './redis-control.js';
import { RedisNames } from './redis-names.js';
import { withScripts, type ScriptedRedis } from './redis-scripts.js';
import { RedisSingleFlight } from './redis-single-flight.js';
import { RedisSubscriptions } from './redis-subscriptions.js';

export interface RedisCoordinatorOptions {
  /** Prefix of every key and channel (default `pgwake:`): deployments or test runs can share one Redis. */
  prefix?: string;
  logger?: Logger;
  /** How long `connect` waits for Redis before it gives up with an error. */
  connectTimeoutMs?: number;
  /** A single-flight lock outlives a dead holder by at most this (default 5 s). */
  flightLockTtlMs?: number;
}

/** Gateway index entries are dropped this long after their report lapsed; the report key's own TTL is what counts. */
const GATEWAY_INDEX_SLACK_MS = 60_000;

/**
 * The coordinator for roles in separate processes (DESIGN §2), over Redis with
 * ioredis: pub/sub for db changes and event notices (on a connection of its own,
 * in subscriber mode), a request list for control requests, SET NX PX locks for
 * single flights, keys with TTLs for activity heartbeats, leases and cancel keys,
 * and Lua for the compare-and-set steps. Commands issued while Redis is away wait
 * for it (ioredis' offline queue) rather than fail: callers bound their own waits.
 */
export class RedisCoordinator implements Coordinator {
  readonly processId = randomId('proc');
  readonly #names: RedisNames;
  readonly #subscriptions: RedisSubscriptions;
  readonly #flights: RedisSingleFlight;
  readonly #control: RedisControlRequests;
  readonly #onError: (err: Error, what: string) => void;
  /** Every fixed channel subscribed: what `connect` waits for. */
  readonly #ready: Promise<unknown>;
  #dbListeners = new Set<(msg: DbChanged) => void>();
  #eventListeners = new Set<(msg: EventAppended) => void>();
  /** Per gateway id: its cancel channel's subscription confirmed. */
  #cancelChannels = new Map<string, Promise<void>>();
  #closed = false;

  private constructor(
    private readonly redis: ScriptedRedis,
    private readonly sub: Redis,
    options: RedisCoordinatorOptions,
  ) {
    const log = options.logger?.child({ component: 'coordinator' });
    let lastWarning = 0;
    this.#onError = (err, what) => {
      if (this.#closed) return;
      // A Redis outage repeats the same error many times a second: say it once a second.
      if (Date.now() - lastWarning < 1_000) return;
      lastWarning = Date.now();
      log?.warn({ err: err.message }, `redis coordinator: ${what} failed`);
    };
    redis.on('error', (err: Error) => this.#onError(err, 'command connection'));
    sub.on('error', (err: Error) => this.#onError(err, 'subscriber connection'));
    this.#names = new RedisNames(options.prefix ?? 'pgwake:');
    this.#subscriptions = new RedisSubscriptions(sub, this.#onError);
    this.#flights = new RedisSingleFlight(redis, this.#names, this.#subscriptions, { lockTtlMs: options.flightLockTtlMs ?? 5_000, resultTtlMs: 30_000, pollMs: 250 }, this.#onError);
    this.#control = new RedisControlRequests(redis, this.#names, this.#subscriptions, this.#flights, this.processId, this.#onError);
    this.#subscriptions.onReconnect(() => void this.#control.recheckPending().catch((err: Error) => this.#onError(err, 'recheck control replies')));
    const dbChanged = this.#subscriptions.listen(this.#names.dbChanged, (m) => {
      const msg = JSON.parse(m) as DbChanged;
      for (const listener of this.#dbListeners) this.#deliver(() => listener(msg), 'db change listener');
    });
    const eventAppended = this.#subscriptions.listen(this.#names.eventAppended, (m) => {
      const msg = JSON.parse(m) as EventAppended;
      for (const listener of this.#eventListeners) this.#deliver(() => listener(msg), 'event notice listener');
    });
    this.#ready = Promise.all([this.#flights.ready, this.#control.ready, dbChanged.ready, eventAppended.ready]);
  }

  /** Connects both links and subscribes the fixed channels; fails with a clear message when Redis cannot be reached. */
  static async connect(url: string, options: RedisCoordinatorOptions = {}): Promise<RedisCoordinator> {
    const common = { maxRetriesPerRequest: null, lazyConnect: true, connectionName: 'pgwake' };
    const redis = withScripts(new Redis(url, common));
    const sub = new Redis(url, common);
    const failures: Error[] = [];
    const noteFailure = (err: Error) => failures.push(err);
    redis.on('error', noteFailure);
    sub.on('error', noteFailure);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const coordinator = await Promise.race([
        (async () => {
          await Promise.all([redis.connect(), sub.connect()]);
          const c = new RedisCoordinator(redis, sub, options);
          await c.#ready;
          return c;
        })(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
      redis.off('error', noteFailure);
      sub.off('error', noteFailure);
      return coordinator;
    } catch (err) {
      redis.disconnect();
      sub.disconnect();
      const cause = failures[0]?.message ?? (err as Error).message;
      throw new Error(`cannot reach Redis at ${redactedUrl(url)}: ${cause}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One listener that throws does not keep the message from the others. */
  #deliver(call: () => void, what: string): void {
    try {
      call();
    } catch (err) {
      this.#onError(err as Error, what);
    }
  }

  publishDbChanged(msg: DbChanged): void {
    this.redis.publish(this.#names.dbChanged, JSON.stringify(msg)).catch((err: Error) => this.#onError(err, 'publish db change'));
  }

  onDbChanged(listener: (msg: DbChanged) => void): Unsubscribe {
    this.#dbListeners.add(listener);
    return () => this.#dbListeners.delete(listener);
  }

  publishEventAppended(msg: EventAppended): void {
    this.redis.publish(this.#names.eventAppended, JSON.stringify(msg)).catch((err: Error) => this.#onError(err, 'publish event notice'));
  }

  onEventAppended(listener: (msg: EventAppended) => void): Unsubscribe {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  serveControlRequests(handler: (req: ControlRequest) => Promise<void>): Unsubscribe {
    return this.#control.serve(handler);
  }

  requestControl(req: ControlRequest, timeoutMs: number): Promise<void> {
    return this.#control.request(req, timeoutMs);
  }

  /** Values and errors reach the other processes' callers as JSON (an error keeps its message and string `code`). */
  singleFlight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#flights.run(`app:${key}`, fn);
  }

  async reportActivity(report: ActivityReport, ttlMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(this.#names.activity(report.gatewayId), JSON.stringify(report), 'PX', ttlMs)
      .zadd(this.#names.gateways, Date.now() + ttlMs, report.gatewayId)
      .exec();
  }

  async activity(): Promise<Map<string, DbActivity>> {
    const out = new Map<string, DbActivity>();
    for (const report of await this.gatewayReports()) {
      for (const [dbId, a] of Object.entries(report.dbs)) out.set(dbId, sumActivity(out.get(dbId), a));
    }
    return out;
  }

  async gatewayReports(): Promise<ActivityReport[]> {
    // The sorted set only lists gateways; a report whose key expired has lapsed, whatever the clocks say.
    await this.redis.zremrangebyscore(this.#names.gateways, '-inf', Date.now() - GATEWAY_INDEX_SLACK_MS);
    const ids = await this.redis.zrange(this.#names.gateways, '0', '-1');
    if (!ids.length) return [];
    const reports = await this.redis.mget(ids.map((id) => this.#names.activity(id)));
    return reports.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as ActivityReport);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | null> {
    const asked = Date.now();
    const epoch = await this.redis.pgwakeLeaseAcquire(this.#names.lease(name), this.#names.leaseEpoch(name), holder, ttlMs);
    // Counted from before the call: the holder believes in its lease a little less long than Redis keeps it.
    return epoch === null ? null : { name, holder, epoch: Number(epoch), expiresAt: asked + ttlMs };
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    const asked = Date.now();
    const left = lease.expiresAt - asked;
    if (left <= 0) return false;
    // A renewal that cannot be confirmed before the lease ends counts as lost: the holder must stop acting.
    let timer: NodeJS.Timeout | undefined;
    const renewed = await Promise.race([
      this.redis.pgwakeRenewIfHeld(this.#names.lease(lease.name), leaseValue(lease), ttlMs).then((n) => n === 1),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), left))),
    ]).finally(() => clearTimeout(timer));
    if (renewed) lease.expiresAt = asked + ttlMs;
    return renewed;
  }

  async releaseLease(lease: Lease): Promise<void> {
    await this.redis.pgwakeDeleteIfHeld(this.#names.lease(lease.name), leaseValue(lease));
  }

  onReconnect(listener: () => void): Unsubscribe {
    return this.#subscriptions.onReconnect(listener);
  }

  // Cancel keys: `cancel-key:<key>` names the owning gateway; a forward publishes the key on that gateway's channel.
  async registerCancelKey(key: string, gatewayId: string, ttlMs: number): Promise<void> {
    // A key registered here must be deliverable once this returns: wait for our own subscription.
    await this.#cancelChannels.get(gatewayId);
    await this.redis.set(this.#names.cancelKey(key), gatewayId, 'PX', ttlMs);
  }

  async unregisterCancelKey(key: string): Promise<void> {
    await this.redis.del(this.#names.cancelKey(key));
  }

  async forwardCancel(key: string): Promise<boolean> {
    return (await this.redis.pgwakeCancelForward(this.#names.cancelKey(key), this.#names.cancelChannelPrefix, key)) > 0;
  }

  onCancelForwarded(gatewayId: string, handler: (key: string) => void): Unsubscribe {
    const subscription = this.#subscriptions.listen(this.#names.cancelChannel(gatewayId), handler);
    this.#cancelChannels.set(gatewayId, subscription.ready.catch(() => undefined));
    return subscription.stop;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#control.close();
    this.#closed = true;
    this.#subscriptions.clear();
    this.#dbListeners.clear();
    this.#eventListeners.clear();
    // QUIT lets queued commands (a last activity report, a reply) go out; a dead link is just dropped.
    await Promise.all([quit(this.redis), quit(this.sub)]);
  }
}

function leaseValue(lease: Lease): string {
  return `${lease.epoch}:${lease.holder}`;
}

async function quit(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
  redis.disconnect();
}

function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
