import type { PoolServer } from './pool-server.js';

/** A client waiting for a server connection. */
export interface Waiter {
  resolve(server: PoolServer): void;
  reject(err: Error): void;
  enqueuedAt: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The clients waiting for a pool's server connections, first come first served.
 * Each wait is bounded by the checkout timeout, except while the db is frozen:
 * a freeze holds waiters until it is lifted or the handoff's deadline passes,
 * and their timeouts start again afresh once it is lifted.
 */
export class CheckoutQueue {
  #waiters: Waiter[] = [];

  get length(): number {
    return this.#waiters.length;
  }

  get oldestEnqueuedAt(): number | undefined {
    return this.#waiters[0]?.enqueuedAt;
  }

  push(w: Waiter): void {
    this.#waiters.push(w);
  }

  shift(): Waiter | undefined {
    const w = this.#waiters.shift();
    if (w) clearTimeout(w.timer);
    return w;
  }

  remove(w: Waiter): boolean {
    const i = this.#waiters.indexOf(w);
    if (i < 0) return false;
    this.#waiters.splice(i, 1);
    clearTimeout(w.timer);
    return true;
  }

  /** Starts the checkout timeout of `w` (or of every waiter without one). */
  arm(w: Waiter, ms: number, onTimeout: (w: Waiter) => void): void {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => onTimeout(w), ms);
    w.timer.unref();
  }

  armAll(ms: number, onTimeout: (w: Waiter) => void): void {
    for (const w of this.#waiters) this.arm(w, ms, onTimeout);
  }

  /** Stops every timeout (a freeze began). */
  disarmAll(): void {
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
  }

  /** Fails every waiter that was enqueued at or before `before` (all when omitted). */
  failAll(err: Error, before = Infinity): void {
    const failed = this.#waiters.filter((w) => w.enqueuedAt <= before);
    this.#waiters = this.#waiters.filter((w) => w.enqueuedAt > before);
    for (const w of failed) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
