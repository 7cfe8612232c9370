import { setTimeout as sleep } from 'node:timers/promises';
import type { Lease, Logger, RoleContext } from '../core/index.js';

export const AUTOSCALER_LEASE = 'autoscaler';

/**
 * The lease that makes one autoscaler the acting one (DESIGN §3, fencing). The
 * coordinator decides who holds it; the catalog hands the holder a fencing
 * epoch greater than every earlier one, which it writes into
 * `dbs.lease_control_epoch` and compares on every write, so a stale holder can
 * move no db. Renewed at a third of its lifetime; a lost lease is taken again
 * (with a new epoch) as soon as it can be.
 */
export class ControlLease {
  #lease: Lease;
  #epoch: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** False from a failed renewal until the lease is taken again. */
  #held = true;
  #log: Logger;

  private constructor(
    private readonly ctx: RoleContext,
    lease: Lease,
    epoch: number,
    private readonly onLost: () => void,
    private readonly onRetaken: () => void,
  ) {
    this.#lease = lease;
    this.#epoch = epoch;
    this.#log = ctx.logger.child({ component: 'control-lease' });
  }

  /** Waits until the lease is ours. `onLost`/`onRetaken`: acting stops when it is lost, starts again when it is taken again. */
  static async acquire(ctx: RoleContext, holder: string, onLost: () => void, signal?: AbortSignal, onRetaken: () => void = () => undefined): Promise<ControlLease> {
    const { lease, epoch } = await take(ctx, holder, signal);
    const l = new ControlLease(ctx, lease, epoch, onLost, onRetaken);
    l.#log.info({ holder, lease_control_epoch: epoch }, 'acting autoscaler');
    l.#schedule();
    return l;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Whether this autoscaler holds the lease now (and so acts). Past the lease's end by
   * this process' clock it does not, even before a renewal has failed: a process that was
   * paused (SIGSTOP, a long GC) must not act on what it took before the pause.
   */
  get held(): boolean {
    return this.#held && !this.#stopped && Date.now() < this.#lease.expiresAt;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renew(), Math.max(100, Math.floor(this.ctx.config.autoscalerLeaseTtlMs / 3)));
  }

  async #renew(): Promise<void> {
    const ttl = this.ctx.config.autoscalerLeaseTtlMs;
    const held = await this.ctx.coordinator.renewLease(this.#lease, ttl).catch(() => false);
    if (this.#stopped) return;
    if (!held) {
      this.#log.error({ lease_control_epoch: this.#epoch }, 'lost the autoscaler lease; acting stops until it is taken again');
      this.#held = false;
      this.onLost();
      const { lease, epoch } = await take(this.ctx, this.#lease.holder);
      if (this.#stopped) return;
      this.#lease = lease;
      this.#epoch = epoch;
      this.#held = true;
      this.#log.info({ lease_control_epoch: epoch }, 'acting autoscaler again');
      this.onRetaken();
    }
    this.#schedule();
  }

  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.ctx.coordinator.releaseLease(this.#lease).catch(() => undefined);
  }
}

async function take(ctx: RoleContext, holder: string, signal?: AbortSignal): Promise<{ lease: Lease; epoch: number }> {
  const ttl = ctx.config.autoscalerLeaseTtlMs;
  for (;;) {
    signal?.throwIfAborted();
    const lease = await ctx.coordinator.acquireLease(AUTOSCALER_LEASE, holder, ttl);
    if (lease) return { lease, epoch: await ctx.catalog.controlEpochs.next(AUTOSCALER_LEASE) };
    await sleep(Math.max(50, Math.floor(ttl / 4)), undefined, { signal });
  }
}
