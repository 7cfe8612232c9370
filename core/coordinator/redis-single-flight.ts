import { randomUUID } from 'node:crypto';
import { ControlRequestError } from './coordinator.js';
import type { RedisNames } from './redis-names.js';
import type { ScriptedRedis } from './redis-scripts.js';
import type { RedisSubscriptions } from './redis-subscriptions.js';

/** How a flight ended, as the processes that waited on it learn it (values travel as JSON). */
export type FlightOutcome = { ok: true; value?: unknown } | { ok: false; message: string; code?: string };

interface FlightDone {
  key: string;
  token: string;
  outcome: FlightOutcome;
}

export interface SingleFlightTimings {
  /** A lock outlives its holder by at most this; the holder renews it at a third. */
  lockTtlMs: number;
  /** How long a finished flight's outcome stays readable for waiters that came late. */
  resultTtlMs: number;
  /** How often a waiter checks that the holder is still there (pub/sub carries the fast path). */
  pollMs: number;
}

const CONTROL_CODES = new Set(['timeout', 'failed', 'no_autoscaler']);

/**
 * One call per key at a time across every process on the Redis. The first caller
 * takes `flight:<key>` with SET NX PX (renewed while it runs) and, when done,
 * stores its outcome and publishes it; everybody else waits for that message.
 * A holder that dies lets its lock lapse: waiters then see no lock and no result,
 * and one of them flies instead. In one process, callers share a promise first.
 */
export class RedisSingleFlight {
  #local = new Map<string, Promise<unknown>>();
  #waiters = new Map<string, Set<(done: FlightDone) => void>>();
  /** Resolves once this process hears flight outcomes. */
  readonly ready: Promise<void>;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly names: RedisNames,
    subscriptions: RedisSubscriptions,
    private readonly timings: SingleFlightTimings,
    private readonly onError: (err: Error, what: string) => void,
  ) {
    this.ready = subscriptions.listen(names.flightDone, (message) => {
      const done = JSON.parse(message) as FlightDone;
      for (const waiter of this.#waiters.get(done.key) ?? []) waiter(done);
    }).ready;
  }

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#local.get(key);
    if (running) return running as Promise<T>;
    const flight = this.#fly(key, fn).finally(() => this.#local.delete(key));
    this.#local.set(key, flight);
    return flight;
  }

  async #fly<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const lock = this.names.flightLock(key);
    // Listen before looking, so the end of the flight we find cannot slip by. Every flight of the key that ends
    // while this call waits is kept: when a holder dies, another waiter may fly and finish before this one looks again.
    const heard: FlightDone[] = [];
    let wanted: string | undefined;
    let deliver: ((outcome: FlightOutcome) => void) | undefined;
    const waiter = (done: FlightDone) => {
      heard.push(done);
      if (done.token === wanted) deliver?.(done.outcome);
    };
    let waiters = this.#waiters.get(key);
    if (!waiters) this.#waiters.set(key, (waiters = new Set()));
    waiters.add(waiter);
    try {
      for (;;) {
        // A flight of the key that ended while this call waited answers it: flying now would be a second call.
        const ended = heard[0];
        if (ended) return unwrap<T>(ended.outcome);
        const token = randomUUID();
        if ((await this.redis.set(lock, token, 'PX', this.timings.lockTtlMs, 'NX')) === 'OK') return await this.#lead(key, lock, token, fn);
        const holder = await this.redis.get(lock);
        if (holder === null) continue; // it ended between the two commands: try again
        wanted = holder;
        const outcome = heard.find((d) => d.token === holder)?.outcome ?? (await this.#follow(lock, holder, (d) => (deliver = d)));
        if (outcome) return unwrap<T>(outcome);
        // The holder went away without an outcome (it died): fly again.
        wanted = undefined;
        deliver = undefined;
      }
    } finally {
      waiters.delete(waiter);
      if (!waiters.size && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
    }
  }

  async #lead<T>(key: string, lock: string, token: string, fn: () => Promise<T>): Promise<T> {
    const renew = setInterval(() => {
      this.redis.pgwakeRenewIfHeld(lock, token, this.timings.lockTtlMs).catch((err: Error) => this.onError(err, `renew flight ${key}`));
    }, Math.max(10, Math.floor(this.timings.lockTtlMs / 3)));
    let outcome: FlightOutcome = { ok: false, message: 'flight did not finish' };
    try {
      const value = await fn();
      outcome = { ok: true, value };
      return value;
    } catch (err) {
      const e = err as Error & { code?: unknown };
      outcome = { ok: false, message: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) };
      throw err;
    } finally {
      clearInterval(renew);
      const json = JSON.stringify(outcome);
      // The caller has its answer already; the others hear it as soon as Redis takes it.
      this.redis
        .pgwakeFlightFinish(lock, this.names.flightResult(token), token, json, this.timings.resultTtlMs, this.names.flightDone, JSON.stringify({ key, token, outcome }))
        .catch((err: Error) => this.onError(err, `finish flight ${key}`));
    }
  }

  /** Waits for the flight held under `token`: its outcome, or null when its holder vanished without one. */
  #follow(lock: string, token: string, onDelivery: (deliver: (outcome: FlightOutcome) => void) => void): Promise<FlightOutcome | null> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: FlightOutcome | null) => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        resolve(outcome);
      };
      onDelivery(finish);
      const check = async () => {
        // The outcome is stored before the lock goes, in one script: no lock and no outcome means no holder.
        const [stored, holder] = await this.redis.mget(this.names.flightResult(token), lock);
        if (stored) finish(JSON.parse(stored) as FlightOutcome);
        else if (holder !== token) finish(null);
      };
      const poll = () => void check().catch((err: Error) => this.onError(err, 'check flight'));
      const timer = setInterval(poll, this.timings.pollMs);
      poll(); // it may have ended before `wanted` was set
    });
  }
}

function unwrap<T>(outcome: FlightOutcome): T {
  if (outcome.ok) return outcome.value as T;
  if (outcome.code && CONTROL_CODES.has(outcome.code)) throw new ControlRequestError(outcome.message, outcome.code as ControlRequestError['code']);
  const err = new Error(outcome.message) as Error & { code?: string };
  if (outcome.code) err.code = outcome.code;
  throw err;
}
