import type { Socket } from 'node:net';
import { Counter } from 'prom-client';
import type { Logger, Registry } from '../core/index.js';
import { errorResponse, SQLSTATE } from './errors.js';

/** How often sessions are looked at: the precision of both limits. */
const SWEEP_MS = 500;
/** A session past its maximum life that stays in a transaction this much longer is ended anyway (the compute rolls it back). */
const BUSY_GRACE_MS = 5 * 60_000;
const FLUSH_MS = 2_000;

export interface LifetimeWatch {
  socket: Socket;
  /** `busy`: the client holds a server connection for a request or transaction: not idle, and not at a message boundary. */
  client: { readonly busy: boolean };
  /** 0: never. */
  idleTimeoutSeconds: number;
  maxConnectionLifeSeconds: number;
  log: Logger;
}

/**
 * A watched session: a class, not `{ ...w, startedAt, … }`, whose spread gave every
 * session's entry a hidden class of its own (a map and descriptors, ~300 bytes per client).
 */
class Watched implements LifetimeWatch {
  readonly socket: Socket;
  readonly client: { readonly busy: boolean };
  readonly idleTimeoutSeconds: number;
  readonly maxConnectionLifeSeconds: number;
  readonly log: Logger;
  readonly startedAt: number;
  bytes: number;
  lastTrafficAt: number;

  constructor(w: LifetimeWatch, now: number) {
    this.socket = w.socket;
    this.client = w.client;
    this.idleTimeoutSeconds = w.idleTimeoutSeconds;
    this.maxConnectionLifeSeconds = w.maxConnectionLifeSeconds;
    this.log = w.log;
    this.startedAt = now;
    this.bytes = trafficOf(w.socket);
    this.lastTrafficAt = now;
  }
}

type EndReason = 'idle_timeout' | 'max_connection_life';

/**
 * Ends client sessions that sat idle too long (no bytes either way, no request or
 * transaction open: 57P05) or lived too long (57P01, at the first moment between
 * transactions), as PgBouncer's janitor does. One sweep for all sessions; traffic
 * is read off the sockets' own byte counters, so the hot path does nothing for it.
 * The FATAL goes out between messages: a session is ended only while it holds no
 * server connection, when the compute's last message (ReadyForQuery) has been relayed.
 */
export class SessionLifetimes {
  #sessions = new Set<Watched>();
  #timer: NodeJS.Timeout | null = null;
  readonly #ended: Counter<'reason'>;

  constructor(metrics: Registry) {
    const name = 'pgwake_gateway_sessions_ended_total';
    this.#ended =
      (metrics.getSingleMetric(name) as Counter<'reason'> | undefined) ??
      new Counter({ name, help: 'Client sessions the gateway ended: idle_timeout, max_connection_life.', labelNames: ['reason'] as const, registers: [metrics] });
  }

  /** Watches a relayed session until the returned function is called (when it ended by itself). */
  watch(w: LifetimeWatch): () => void {
    if (w.idleTimeoutSeconds === 0 && w.maxConnectionLifeSeconds === 0) return unwatched;
    const entry = new Watched(w, Date.now());
    this.#sessions.add(entry);
    this.#timer ??= setInterval(() => this.#sweep(), SWEEP_MS).unref();
    return () => {
      this.#sessions.delete(entry);
      if (this.#sessions.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    };
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#sessions.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const s of this.#sessions) {
      const bytes = trafficOf(s.socket);
      if (bytes !== s.bytes) {
        s.bytes = bytes;
        s.lastTrafficAt = now;
      }
      const busy = s.client.busy;
      const age = now - s.startedAt;
      const maxLife = s.maxConnectionLifeSeconds * 1000;
      if (s.idleTimeoutSeconds > 0 && !busy && now - s.lastTrafficAt >= s.idleTimeoutSeconds * 1000) {
        this.#end(s, 'idle_timeout');
      } else if (maxLife > 0 && age >= maxLife && (!busy || age >= maxLife + BUSY_GRACE_MS)) {
        this.#end(s, 'max_connection_life');
      }
    }
  }

  #end(s: Watched, reason: EndReason): void {
    this.#sessions.delete(s);
    this.#ended.inc({ reason });
    const message =
      reason === 'idle_timeout'
        ? errorResponse({ sqlstate: SQLSTATE.idleSessionTimeout, message: 'terminating connection due to idle-session timeout', detail: `no traffic for ${s.idleTimeoutSeconds} s`, hint: 'reconnect; the db may set a longer idle timeout (PUT …/connection-limits)' })
        : errorResponse({ sqlstate: SQLSTATE.adminShutdown, message: `terminating connection: it reached the maximum connection life of ${s.maxConnectionLifeSeconds} s`, hint: 'reconnect: a new connection (with a fresh token) starts a new life' });
    s.log.info({ reason, age_ms: Date.now() - s.startedAt }, 'session ended by the gateway');
    // Nothing more from the client is relayed; the relay sees the socket close and lets its server go.
    s.socket.pause();
    if (!s.socket.destroyed) {
      s.socket.end(message);
      setTimeout(() => s.socket.destroy(), FLUSH_MS).unref();
    }
  }
}

const unwatched = (): void => undefined;

function trafficOf(socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten;
}
