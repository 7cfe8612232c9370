import { EventEmitter } from 'node:events';
import { sumActivity, ControlRequestError, type ActivityReport, type ControlRequest, type Lease, type Coordinator, type DbActivity, type DbChanged, type EventAppended, type Unsubscribe } from './coordinator.js';

/** The embedded coordinator: every role in one process, so Maps and an EventEmitter are the whole story. */
export class InProcessCoordinator implements Coordinator {
  #bus = new EventEmitter().setMaxListeners(0);
  #handler: ((req: ControlRequest) => Promise<void>) | undefined;
  #flights = new Map<string, Promise<unknown>>();
  #reports = new Map<string, { report: ActivityReport; expiresAt: number }>();
  #leases = new Map<string, Lease>();
  #epochs = new Map<string, number>();
  #cancelKeys = new Map<string, { gatewayId: string; expiresAt: number }>();
  #cancelHandlers = new Map<string, Set<(key: string) => void>>();

  publishDbChanged(msg: DbChanged): void {
    this.#bus.emit('db', msg);
  }

  onDbChanged(listener: (msg: DbChanged) => void): Unsubscribe {
    this.#bus.on('db', listener);
    return () => this.#bus.off('db', listener);
  }

  publishEventAppended(msg: EventAppended): void {
    this.#bus.emit('event', msg);
  }

  onEventAppended(listener: (msg: EventAppended) => void): Unsubscribe {
    this.#bus.on('event', listener);
    return () => this.#bus.off('event', listener);
  }

  serveControlRequests(handler: (req: ControlRequest) => Promise<void>): Unsubscribe {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = undefined;
    };
  }

  async requestControl(req: ControlRequest, timeoutMs: number): Promise<void> {
    const handler = this.#handler;
    if (!handler) throw new ControlRequestError('no autoscaler is running to act on the db', 'no_autoscaler');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ControlRequestError(`${req.action} of ${req.dbId} did not finish within ${timeoutMs} ms`, 'timeout')), timeoutMs);
    });
    try {
      await Promise.race([
        this.singleFlight(`${req.action}:${req.dbId}`, () => handler(req)).catch((err: Error) => {
          throw err instanceof ControlRequestError ? err : new ControlRequestError(err.message, 'failed');
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  singleFlight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#flights.get(key);
    if (running) return running as Promise<T>;
    const flight = fn().finally(() => this.#flights.delete(key));
    this.#flights.set(key, flight);
    return flight;
  }

  async reportActivity(report: ActivityReport, ttlMs: number): Promise<void> {
    this.#reports.set(report.gatewayId, { report, expiresAt: Date.now() + ttlMs });
  }

  async activity(): Promise<Map<string, DbActivity>> {
    const now = Date.now();
    const out = new Map<string, DbActivity>();
    for (const [gatewayId, { report, expiresAt }] of this.#reports) {
      if (expiresAt < now) {
        this.#reports.delete(gatewayId);
        continue;
      }
      for (const [dbId, a] of Object.entries(report.dbs)) out.set(dbId, sumActivity(out.get(dbId), a));
    }
    return out;
  }

  async gatewayReports(): Promise<ActivityReport[]> {
    const now = Date.now();
    return [...this.#reports.values()].filter((r) => r.expiresAt >= now).map((r) => r.report);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<Lease | null> {
    const now = Date.now();
    const held = this.#leases.get(name);
    if (held && held.expiresAt > now && held.holder !== holder) return null;
    const epoch = held && held.holder === holder && held.expiresAt > now ? held.epoch : (this.#epochs.get(name) ?? 0) + 1;
    this.#epochs.set(name, epoch);
    const lease = { name, holder, epoch, expiresAt: now + ttlMs };
    this.#leases.set(name, lease);
    return { ...lease };
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<boolean> {
    const held = this.#leases.get(lease.name);
    if (!held || held.holder !== lease.holder || held.epoch !== lease.epoch || held.expiresAt <= Date.now()) return false;
    held.expiresAt = Date.now() + ttlMs;
    lease.expiresAt = held.expiresAt;
    return true;
  }

  async releaseLease(lease: Lease): Promise<void> {
    const held = this.#leases.get(lease.name);
    if (held && held.holder === lease.holder && held.epoch === lease.epoch) this.#leases.delete(lease.name);
  }

  onReconnect(): Unsubscribe {
    // One process has no link to lose: nothing is ever missed.
    return () => {};
  }

  async registerCancelKey(key: string, gatewayId: string, ttlMs: number): Promise<void> {
    this.#cancelKeys.set(key, { gatewayId, expiresAt: Date.now() + ttlMs });
  }

  async unregisterCancelKey(key: string): Promise<void> {
    this.#cancelKeys.delete(key);
  }

  async forwardCancel(key: string): Promise<boolean> {
    const owner = this.#cancelKeys.get(key);
    if (!owner) return false;
    if (owner.expiresAt <= Date.now()) {
      this.#cancelKeys.delete(key);
      return false;
    }
    const handlers = this.#cancelHandlers.get(owner.gatewayId);
    if (!handlers?.size) return false;
    for (const handler of handlers) handler(key);
    return true;
  }

  onCancelForwarded(gatewayId: string, handler: (key: string) => void): Unsubscribe {
    let handlers = this.#cancelHandlers.get(gatewayId);
    if (!handlers) this.#cancelHandlers.set(gatewayId, (handlers = new Set()));
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (!handlers.size) this.#cancelHandlers.delete(gatewayId);
    };
  }

  async close(): Promise<void> {
    this.#bus.removeAllListeners();
    this.#handler = undefined;
    this.#cancelHandlers.clear();
  }
}
