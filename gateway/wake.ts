import { performance } from 'node:perf_hooks';
import { ControlRequestError, type Catalog, type Coordinator, type DbRecord, type Logger, type Route } from '../core/index.js';
import type { ComputeRoutes } from './compute-routes.js';
import { ClientGone, GatewayError, SQLSTATE } from './errors.js';
import type { WakeResult } from './metrics.js';
import { sleep } from './retry.js';

export interface WakeDeps {
  catalog: Catalog;
  coordinator: Coordinator;
  routes: ComputeRoutes;
  timeoutMs: number;
  logger: Logger;
  /** Counts the wakes asked for and how long they took (the gateway's metrics). */
  metrics?: { wakeEnded(result: WakeResult, seconds: number): void };
}

export interface Wake {
  route: Route;
  /** True when the gateway had to ask for a start (a cold connection). */
  woke: boolean;
}

/**
 * A route to the db's running writer, asking the autoscaler to start it when it is
 * not running (DESIGN §3). Waking is a queued wait bounded by the wake timeout:
 * a failed or unanswered request is asked again until then, never turned into an
 * early error. Every gateway's request for one db shares one start (the
 * coordinator coalesces them). `force` skips the known route (it just failed).
 */
export async function wakeCompute(db: DbRecord, deps: WakeDeps, signal: AbortSignal, force = false): Promise<Wake> {
  if (!force) {
    const known = deps.routes.get(db.id) ?? deps.routes.remember(db);
    if (known) return { route: known, woke: false };
  }
  const started = performance.now();
  try {
    const wake = await askForStart(db, deps, signal);
    deps.metrics?.wakeEnded('started', (performance.now() - started) / 1000);
    return wake;
  } catch (err) {
    deps.metrics?.wakeEnded(wakeResultOf(err), (performance.now() - started) / 1000);
    throw err;
  }
}

function wakeResultOf(err: unknown): WakeResult {
  if (err instanceof ClientGone) return 'client_gone';
  if (err instanceof GatewayError && err.outcome === 'db_not_found') return 'db_gone';
  if (err instanceof GatewayError && err.sqlstate === SQLSTATE.cannotConnectNow) return 'timeout';
  return 'failed';
}

async function askForStart(db: DbRecord, deps: WakeDeps, signal: AbortSignal): Promise<Wake> {
  const deadline = Date.now() + deps.timeoutMs;
  const didNotStart = (why: string) =>
    new GatewayError(SQLSTATE.cannotConnectNow, `the compute for database "${db.name}" did not start within ${deps.timeoutMs} ms`, 'compute_unavailable', why, 'try again in a moment');
  for (let attempt = 0; ; attempt++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw didNotStart('the wake timed out');
    try {
      await untilAborted(deps.coordinator.requestControl({ action: 'wake', dbId: db.id }, remaining), signal);
    } catch (err) {
      if (err instanceof ClientGone) throw err;
      if (err instanceof ControlRequestError && err.code === 'timeout') throw didNotStart('the wake timed out');
      deps.logger.warn({ db_id: db.id, err: (err as Error).message, attempt }, 'wake request failed; asking again until the wake timeout');
      await untilAborted(sleep(Math.min(Math.max(0, deadline - Date.now()), 100 * 2 ** Math.min(attempt, 5))), signal);
      continue;
    }
    const fresh = await deps.catalog.dbs.byId(db.id);
    if (!fresh || fresh.state === 'deleting' || fresh.state === 'deleted') {
      throw new GatewayError(SQLSTATE.invalidCatalogName, `database "${db.name}" does not exist`, 'db_not_found');
    }
    const route = deps.routes.remember(fresh);
    if (route) return { route, woke: true };
    // Started and already suspending again (a lost race): ask once more.
  }
}

/** Rejects with ClientGone once `signal` aborts: a client that left stops waiting (the wake itself goes on for others). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new ClientGone());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ClientGone());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
