import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { randomId, type Catalog, type Config, type Coordinator, type Logger, type SecretBox } from '../core/index.js';
import type { ActivityTracker, ClientActivity } from './activity.js';
import { AuthFailure } from './auth/scram.js';
import type { ScramClientKeyCache } from './auth/scram-client.js';
import type { TokenVerifier } from './auth/token-verifier.js';
import { handleCancelRequest, type CancelKeys, type CancelSubject, type GatewayCancelKey } from './cancellation.js';
import type { ComputeRoutes } from './compute-routes.js';
import type { ComputeSockets } from './compute-sockets.js';
import { ComputeRefusal, connectCompute } from './connect-compute.js';
import type { Admission, ConnectionLimits } from './connection-limits.js';
import { ClientParams, PoolServer, PooledClient, welcomeFor, type Freezes, type ServerPools } from './pool/index.js';
import type { ComputeLogin } from './server-connection.js';
import { untilAborted } from './wake.js';
import { catalogUnavailable, ClientGone, errorResponseOf, GatewayError, SQLSTATE, type ConnectionOutcome } from './errors.js';
import { readHandshake, type StartupRequest } from './handshake.js';
import { logIn } from './login.js';
import type { GatewayMetrics } from './metrics.js';
import { clientAddressOf } from './network-checks.js';
import { routeRequestOf, type RouteRequest } from './route.js';
import type { SessionLifetimes } from './session-lifetime.js';
import type { TlsSetup } from './tls.js';
import { authenticationOk, backendKeyData, negotiateProtocolVersion, readyForQuery } from './wire/backend-messages.js';

/** How long a new session waits for its activity report to reach the coordinator before going on. */
const REPORT_WAIT_MS = 1_000;

/** Everything a client session uses, built once by `startGateway`. */
export interface GatewayDeps {
  config: Config;
  catalog: Catalog;
  coordinator: Coordinator;
  secrets: SecretBox;
  logger: Logger;
  metrics: GatewayMetrics;
  tls: TlsSetup;
  routes: ComputeRoutes;
  keys: ScramClientKeyCache;
  computeSockets: ComputeSockets;
  cancelKeys: CancelKeys;
  activity: ActivityTracker;
  freezes: Freezes;
  pools: ServerPools;
  tokens: TokenVerifier;
  limits: ConnectionLimits;
  lifetimes: SessionLifetimes;
}

/** How long an error message may take to reach a client before its socket is destroyed anyway. */
const ERROR_FLUSH_MS = 2_000;

/**
 * One client connection, through the steps of DESIGN §4 in order: handshake (and
 * TLS) → route, network checks and authentication (login.ts) → connection limits
 * → wake → checkout (pool/) → relay, under the session's lifetimes. In session mode the
 * client gets its own server connection now (waking the db); in transaction mode
 * it is greeted from its pool and checks out a server per transaction. Never
 * throws: every failure becomes an ErrorResponse with a SQLSTATE, then the socket closes.
 */
export async function serveClient(raw: Socket, deps: GatewayDeps): Promise<void> {
  const conn = new ClientConnection(raw, randomId('conn', 10), deps.logger);
  raw.on('error', ignoreError); // each step sees errors through its own reads; an unhandled one must not crash the process
  deps.metrics.connectionsOpen.inc();
  try {
    const relayed = await openSession(conn, deps);
    if (relayed) {
      try {
        await relayed.client.done;
      } finally {
        relayed.forget();
        relayed.unwatch();
      }
    }
  } catch (err) {
    conn.outcome = refuse(err, conn.socket, conn.canWrite, deps, conn.log);
  } finally {
    if (conn.cancelKey) deps.cancelKeys.release(conn.cancelKey);
    conn.admission?.();
    conn.activity?.close();
    deps.metrics.connectionsOpen.dec();
    if (conn.outcome !== 'relayed') deps.metrics.outcome(conn.outcome ?? 'client_gone');
    // One line per connection: how it ended (db_id once routed, conn_id always).
    conn.log.info({ outcome: conn.outcome ?? 'client_gone', ms: Math.round(performance.now() - conn.startedAt) }, 'connection closed');
  }
}

/**
 * What a client connection keeps while it is relayed, and what its end needs. Built
 * apart from the startup steps so a relayed client does not keep their locals (its
 * handshake, login, greeting) alive for as long as it sits idle: an idle client's
 * memory is most of the gateway's at thousands of connections.
 */
class ClientConnection {
  readonly startedAt = performance.now();
  /** The socket to talk on now (the TLS one after an upgrade) and whether an error can still be written to it. */
  socket: Socket;
  canWrite = false;
  activity: ClientActivity | undefined;
  cancelKey: GatewayCancelKey | undefined;
  admission: Admission | undefined;
  outcome: ConnectionOutcome | undefined;
  log: Logger;

  constructor(
    raw: Socket,
    readonly connId: string,
    logger: Logger,
  ) {
    this.socket = raw;
    this.log = logger.child({ conn_id: connId });
  }
}

/** A relayed client and what to undo when it ends. */
interface Relayed {
  client: PooledClient;
  forget: () => void;
  unwatch: () => void;
}

const ignoreError = (): void => undefined;
const nothingToForget = (): void => undefined;

/** The cancel key's subject: the server connection the client holds when a cancel arrives (no closure per client). */
class ClientCancelSubject implements CancelSubject {
  constructor(private readonly client: PooledClient) {}

  get dbId(): string {
    return this.client.dbId;
  }

  server(): PoolServer | null {
    return this.client.currentServer;
  }
}

/** The startup steps up to the greeting; resolves with the relayed client, or nothing for a cancel request. */
async function openSession(conn: ClientConnection, deps: GatewayDeps): Promise<Relayed | undefined> {
  const raw = conn.socket;
  const deadline = new StartupDeadline(deps.config.startupTimeoutMs);
  try {
    const handshake = await deadline.race(
      readHandshake(raw, deps.tls, (s, r) => {
        conn.socket = s;
        conn.canWrite = r !== null;
      }),
    );
    if (handshake.kind === 'cancel') {
      conn.outcome = 'cancel_request';
      deadline.clear();
      await handleCancelRequest(handshake, deps.cancelKeys, conn.log);
      raw.destroy();
      return undefined;
    }
    const startup = handshake;
    const socket = startup.socket;
    conn.socket = socket;
    conn.canWrite = true;
    if (deps.config.requireTls && !startup.tls) {
      throw new GatewayError(SQLSTATE.invalidAuthorization, 'connection is insecure (try using sslmode=require)', 'tls_required', 'this gateway accepts only TLS connections');
    }
    const request = routeRequestOf(startup.params, startup.sni, deps.config.gatewayHost);
    let log = conn.log.child({ user: request.user });
    conn.log = log;
    if (startup.minorVersion > 0 || startup.unsupportedOptions.length > 0) socket.write(negotiateProtocolVersion(0, startup.unsupportedOptions));

    const who = await deadline.race(logIn(deps, { socket, reader: startup.reader, tls: startup.tls !== null, address: clientAddressOf(raw.remoteAddress) }, request, log));
    socket.write(authenticationOk());
    deadline.clear();

    // Authenticated: only now may the client learn which dbs exist, and only now may a compute start.
    if (!who.db) throw who.dbMissing!;
    const db = who.db;
    conn.admission = await deps.limits.admit(db, who.policy);
    deps.freezes.observe(db);
    // One child of the gateway's logger with every field (not a child of a child): a chain of children is a chain of prototypes, each with its own hidden classes, kept per client.
    log = deps.logger.child({ conn_id: conn.connId, user: request.user, db_id: db.id, pool_mode: db.pool_mode });
    conn.log = log;
    const activity = deps.activity.open(db.id, db.pool_mode);
    conn.activity = activity;
    const clientLeft = new AbortController();
    void startup.reader.closed.then(() => clientLeft.abort());
    const login: ComputeLogin = { user: who.computeUser, password: who.computePassword, database: db.name, params: computeParams(startup, request) };
    const common = { db, log, metrics: deps.metrics, freezes: deps.freezes, activity, maxMessageBytes: deps.config.maxClientMessageBytes };
    let client: PooledClient;
    let greeting: Buffer;
    const started = performance.now();
    if (db.pool_mode === 'transaction') {
      // Server connections are shared by every client of this role and db: opened without the client's parameters, which travel per checkout.
      const pool = deps.pools.get(db, { ...login, params: {} });
      const welcome = await pool.welcome(clientLeft.signal);
      const params = ClientParams.fromStartup(startup.params, request.computeOptions);
      // The pool's db record rather than this login's copy: an idle client keeps its record as long as it stays.
      client = new PooledClient(socket, { mode: 'transaction', pool, params, ...common, db: pool.db });
      conn.cancelKey = deps.cancelKeys.issue(new ClientCancelSubject(client));
      greeting = Buffer.concat([...welcomeFor(welcome, params), backendKeyData(conn.cancelKey.processId, conn.cancelKey.secretKey), readyForQuery('I')]);
    } else {
      // Reported before the route is read: an autoscaler that set `suspending` and looks again sees this client.
      // Bounded: with the coordinator unreachable no autoscaler can act either, and running dbs must keep serving.
      await untilAborted(Promise.race([activity.reported(), new Promise<void>((r) => setTimeout(r, REPORT_WAIT_MS).unref())]), clientLeft.signal);
      await deps.freezes.waitLifted(db.id, db.name, clientLeft.signal);
      const connectDeps = { ...deps, logger: log, timeoutMs: deps.config.wakeTimeoutMs };
      const { server: computeConn, woke } = await connectCompute(db, login, connectDeps, clientLeft.signal);
      deps.metrics.wakeSeconds.observe({ kind: woke ? 'cold' : 'warm' }, (performance.now() - started) / 1000);
      const server = new PoolServer(computeConn, deps.metrics.relayed, () => undefined);
      client = new PooledClient(socket, {
        mode: 'session',
        server,
        routeMatches: (s) => {
          const route = deps.routes.get(db.id);
          return route !== undefined && route.host === s.route.host && route.port === s.route.port && route.writerTerm === s.route.writerTerm;
        },
        reconnect: async (signal) => (await connectCompute((await deps.catalog.dbs.byId(db.id)) ?? db, login, connectDeps, signal)).server,
        ...common,
      });
      conn.cancelKey = deps.cancelKeys.issue(new ClientCancelSubject(client));
      greeting = Buffer.concat([...computeConn.startupMessages, backendKeyData(conn.cancelKey.processId, conn.cancelKey.secretKey), computeConn.readyForQuery]);
    }
    conn.outcome = 'relayed';
    deps.metrics.outcome('relayed');
    log.debug({ ms: Math.round(performance.now() - started) }, 'client session relayed');
    socket.write(greeting);
    const forget = db.pool_mode === 'session' ? deps.pools.addSession(db.id, client) : nothingToForget;
    const unwatch = deps.lifetimes.watch({ socket, client, idleTimeoutSeconds: who.policy.idleTimeoutSeconds, maxConnectionLifeSeconds: who.policy.maxConnectionLifeSeconds, log });
    client.start(startup.reader.detach());
    // A freeze applied while this session connected holds it like the others.
    if (deps.freezes.frozen(db.id)) client.frozenNow();
    return { client, forget, unwatch };
  } finally {
    deadline.clear();
  }
}

/** Tells the client why (when it can still hear it) and closes. Returns the outcome for the metrics. */
function refuse(err: unknown, socket: Socket, canWrite: boolean, deps: GatewayDeps, log: Logger): ConnectionOutcome {
  let message: Buffer | null = null;
  let outcome: ConnectionOutcome;
  if (err instanceof ClientGone) {
    outcome = 'client_gone';
  } else if (err instanceof ComputeRefusal) {
    outcome = err.outcome;
    message = err.raw;
    log.info({ sqlstate: err.sqlstate }, 'compute refused the session');
  } else if (err instanceof GatewayError) {
    outcome = err.outcome;
    message = errorResponseOf(err);
    if (err instanceof AuthFailure) deps.metrics.authFailure(err.reason);
    if (err.outcome === 'startup_timeout') deps.metrics.authFailure('timeout');
    log.info({ sqlstate: err.sqlstate, outcome, reason: err instanceof AuthFailure ? err.reason : undefined, msg_text: err.message }, 'connection refused');
  } else if (catalogUnavailable(err)) {
    outcome = 'catalog_unavailable';
    message = errorResponseOf(catalogUnavailable(err)!);
    log.warn({ err: (err as Error).message }, 'connection refused: catalog unavailable');
  } else {
    outcome = 'internal_error';
    message = errorResponseOf(new GatewayError(SQLSTATE.internalError, 'the gateway could not serve this connection', 'internal_error'));
    log.error({ err }, 'client session failed');
  }
  if (message && canWrite && !socket.destroyed && socket.writable) {
    socket.end(message);
    setTimeout(() => socket.destroy(), ERROR_FLUSH_MS).unref();
  } else {
    socket.destroy();
  }
  return outcome;
}

/** The client's startup parameters for the compute: all but who and where (the gateway says those). */
function computeParams(startup: StartupRequest, request: RouteRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of startup.params) {
    if (k === 'user' || k === 'database' || k === 'options') continue;
    out[k] = v;
  }
  if (request.computeOptions) out.options = request.computeOptions;
  return out;
}

/** The startup and authentication exchange must finish within the startup timeout (a slow client holds nothing). */
class StartupDeadline {
  #timer: NodeJS.Timeout;
  readonly #expired: Promise<never>;

  constructor(ms: number) {
    let fire!: (err: GatewayError) => void;
    this.#expired = new Promise<never>((_, reject) => (fire = reject));
    this.#expired.catch(() => undefined);
    this.#timer = setTimeout(() => fire(new GatewayError(SQLSTATE.protocolViolation, `startup not finished within ${ms} ms`, 'startup_timeout', 'the client must send its startup message and finish authentication in time')), ms);
  }

  race<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined); // a step left behind by the deadline may still fail later
    return Promise.race([p, this.#expired]);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}
