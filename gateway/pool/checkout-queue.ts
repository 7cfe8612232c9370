import type { PoolServer } from './pool-server.js';

/** A client waiting for a server connection. Called back at most once, maybe synchronously. */
export interface Waiter {
  resolve(server: PoolServer): void;
  reject(err: Error): void;
  enqueuedAt: number;
  /** When its checkout timeout fires (ms since epoch); Infinity while a freeze holds it. */
  deadline: number;
}

/**
 * The clients waiting for a pool's server connections, first come first served.
 * Each wait is bounded by the checkout timeout, except while the db is frozen:
 * a freeze holds waiters until it is lifted or the handoff's deadline passes,
 * and their timeouts start again afresh once it is lifted. One timer serves the
 * whole queue (for the earliest deadline), not one per waiter.
 */
export class CheckoutQueue {
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  constructor(private readonly onTimeout: (w: Waiter) => void) {}

  get length(): number {
    return this.#waiters.length;
  }

  get oldestEnqueuedAt(): number | undefined {
    return this.#waiters[0]?.enqueuedAt;
  }

  push(w: Waiter): void {
    this.#waiters.push(w);
    this.#schedule(w.deadline);
  }

  shift(): Waiter | undefined {
    return this.#waiters.shift();
  }

  remove(w: Waiter): boolean {
    const i = this.#waiters.indexOf(w);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    return true;
  }

  /** Gives every waiter a fresh timeout of `ms` (a freeze was lifted). */
  armAll(ms: number): void {
    const deadline = Date.now() + ms;
    for (const w of this.#waiters) w.deadline = deadline;
    this.#schedule(deadline);
  }

  /** Stops every timeout (a freeze began). */
  disarmAll(): void {
    for (const w of this.#waiters) w.deadline = Infinity;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Fails every waiter that was enqueued at or before `before` (all when omitted). */
  failAll(err: Error, before = Infinity): void {
    const failed = this.#waiters.filter((w) => w.enqueuedAt <= before);
    this.#waiters = this.#waiters.filter((w) => w.enqueuedAt > before);
    for (const w of failed) w.reject(err);
  }

  #schedule(deadline: number): void {
    if (deadline === Infinity || deadline >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = deadline;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - Date.now()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const w of [...this.#waiters]) {
      if (w.deadline <= now) this.onTimeout(w);
      else if (w.deadline < next) next = w.deadline;
    }
    this.#schedule(next);
  }
}
