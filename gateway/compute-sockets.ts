import net from 'node:net';
import { MAX_UNIX_SOCKET_PATH_BYTES, type Logger, type Route } from '../core/index.js';

/** Route hosts that say the compute runs on this machine, so its socket file may be ours to open. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Errors that say the socket is not there for this gateway (another container's
 * filesystem, no permission, a file that is not a socket or nobody's): TCP is
 * tried at once, in the same attempt. Anything else (a timeout, a reset) is the
 * compute's, and goes to the usual retries.
 */
const SOCKET_UNUSABLE = new Set(['ENOENT', 'EACCES', 'ECONNREFUSED', 'ENOTSOCK']);

/** Socket paths whose fallback was logged; cleared when full (it only keeps the log quiet). */
const LOGGED_PATHS_MAX = 1_000;

/**
 * How the gateway reaches a compute (PGWAKE_COMPUTE_UNIX_SOCKETS): over the
 * compute's Unix-domain socket when the route has one and points at this
 * machine, else TCP. A loopback TCP send costs the kernel a whole TCP receive
 * path on the other end; a Unix socket hands the bytes over (PgBouncer: +16%
 * TPS on the socket). Cancel requests take the same way as the connection they
 * cancel.
 */
export class ComputeSockets {
  #logged = new Set<string>();

  constructor(readonly enabled: boolean) {}

  /** The socket to try first for `route`, or null for TCP. */
  pathFor(route: Pick<Route, 'host' | 'socketPath'>): string | null {
    const p = route.socketPath;
    if (!this.enabled || !p || !LOOPBACK_HOSTS.has(route.host)) return null;
    // A longer path would be cut short by the OS and could name another socket.
    return Buffer.byteLength(p) <= MAX_UNIX_SOCKET_PATH_BYTES ? p : null;
  }

  /** Whether a failed connect on a socket path should go on over TCP. */
  fallsBack(err: unknown): boolean {
    return socketUnusable(err);
  }

  /** Logs a fallback at info once per socket path: every connection of a gateway in another container would say it again. */
  fellBack(socketPath: string, err: unknown, logger: Logger): void {
    if (this.#logged.has(socketPath)) return;
    if (this.#logged.size >= LOGGED_PATHS_MAX) this.#logged.clear();
    this.#logged.add(socketPath);
    logger.info({ socket_path: socketPath, code: (err as NodeJS.ErrnoException).code }, "cannot open the compute's Unix socket; using TCP");
  }
}

/** A connect on a compute's socket path failed in a way TCP may get past. */
export function socketUnusable(err: unknown): boolean {
  return SOCKET_UNUSABLE.has((err as NodeJS.ErrnoException).code ?? '');
}

/** A connect on the socket path (no Nagle or keepalive there: net ignores both on Unix sockets), or over TCP. */
export function dialCompute(route: Pick<Route, 'host' | 'port'>, socketPath: string | null, onread?: net.OnReadOpts): net.Socket {
  if (socketPath !== null) return net.connect({ path: socketPath, onread });
  return net.connect({ host: route.host, port: route.port, noDelay: true, onread });
}

/** Resolves once `socket` is connected; rejects with its error, or ECONNRESET if it closes first. */
export function whenConnected(socket: net.Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
    socket.once('close', () => reject(Object.assign(new Error('compute closed the connection'), { code: 'ECONNRESET' })));
  });
}
