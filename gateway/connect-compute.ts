import type { DbRecord, Logger, Route } from '../core/index.js';
import type { ScramClientKeyCache } from './auth/scram-client.js';
import type { ComputeSockets } from './compute-sockets.js';
import { ClientGone, GatewayError, SQLSTATE } from './errors.js';
import { backoffMs, ComputeConnectError, CONNECT_RETRY, sleep } from './retry.js';
import { openServerConnection, type ComputeLogin, type ServerConnection } from './server-connection.js';
import { untilAborted, wakeCompute, type WakeDeps } from './wake.js';

/** How long one login to a compute may take; a compute on this network answers in milliseconds. */
const LOGIN_TIMEOUT_MS = 5_000;

export interface ConnectDeps extends WakeDeps {
  keys: ScramClientKeyCache;
  /** Whether (and how) to reach computes on this machine over their Unix sockets. */
  computeSockets: ComputeSockets;
}

export interface ComputeConnection {
  server: ServerConnection;
  /** Whether a start was asked for on the way (for the cold/warm wake histogram). */
  woke: boolean;
}

/**
 * Wake (if needed) and log in to the db's compute. A known route that cannot be
 * reached is dropped and the db woken once more; errors the compute itself sends
 * (53300 too many connections, …) are not retried and reach the client unchanged.
 * A db that stopped running while the login went on (a suspend won the race) is
 * woken again rather than handing the client a session about to be cut.
 */
export async function connectCompute(db: DbRecord, login: ComputeLogin, deps: ConnectDeps, signal: AbortSignal): Promise<ComputeConnection> {
  let woke = false;
  let unreachable = 0;
  for (let round = 0; ; round++) {
    // After the first round the known route is suspect: ask the autoscaler, which knows.
    const wake = await wakeCompute(db, deps, signal, round > 0);
    woke ||= wake.woke;
    let server: ServerConnection;
    try {
      server = await connectWithRetry(wake.route, login, deps, signal);
    } catch (err) {
      // Refused, timed out, "shutting down": the compute may be gone. A real answer (53300, …) is final.
      if (!(err instanceof ComputeConnectError) || (err.sqlstate && !err.transient) || ++unreachable > 1) throw toClientError(err, db);
      deps.logger.warn({ db_id: db.id, err: err.message }, 'compute route failed; waking the db again');
      deps.routes.drop(db.id, wake.route);
      continue;
    }
    const now = deps.routes.get(db.id);
    if (!now && round < MAX_ROUNDS - 1) {
      deps.logger.info({ db_id: db.id }, 'db stopped running during the login; waking it again');
      server.close();
      continue;
    }
    return { server, woke };
  }
}

/** Wake-and-connect rounds for one client: the first, one after an unreachable route, one after a lost race. */
const MAX_ROUNDS = 3;

async function connectWithRetry(route: Route, login: ComputeLogin, deps: { logger: Logger; keys: ScramClientKeyCache; computeSockets: ComputeSockets }, signal: AbortSignal): Promise<ServerConnection> {
  const dial = { sockets: deps.computeSockets, logger: deps.logger };
  for (let attempt = 0; ; attempt++) {
    const opening = openServerConnection(route, login, deps.keys, LOGIN_TIMEOUT_MS, dial);
    try {
      return await untilAborted(opening, signal);
    } catch (err) {
      // The client left mid-login: the connection that still opens is nobody's.
      if (err instanceof ClientGone) opening.then((server) => server.close(), () => undefined);
      if (!(err instanceof ComputeConnectError) || !err.transient || attempt + 1 >= CONNECT_RETRY.attempts) throw err;
      deps.logger.debug({ db_id: route.dbId, err: err.message, attempt }, 'compute not reachable yet; retrying');
      await untilAborted(sleep(backoffMs(CONNECT_RETRY, attempt)), signal);
    }
  }
}

function toClientError(err: unknown, db: DbRecord): Error {
  if (!(err instanceof ComputeConnectError)) return err as Error;
  if (err.sqlstate && !err.sqlstate.startsWith('28') && err.errorResponse) {
    // The compute's own refusal (too many connections, …) concerns the client: passed on as sent.
    return new ComputeRefusal(err.errorResponse, err.sqlstate, err.message);
  }
  return new GatewayError(SQLSTATE.cannotConnectNow, `could not connect to the compute for database "${db.name}"`, 'compute_unavailable', err.sqlstate?.startsWith('28') ? 'the gateway could not log in to the compute' : undefined, 'try again in a moment');
}

/** An ErrorResponse from the compute that the client gets byte for byte. */
export class ComputeRefusal extends GatewayError {
  constructor(readonly raw: Buffer, sqlstate: string, message: string) {
    super(sqlstate, message, 'compute_error');
  }
}

