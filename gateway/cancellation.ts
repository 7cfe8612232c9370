import { randomInt, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { cancelKeyHex, parseCancelKeyHex, type Coordinator, type Logger, type Unsubscribe } from '../core/index.js';
import { dialCompute, socketUnusable } from './compute-sockets.js';
import type { CancelRequest } from './handshake.js';
import type { ComputeCancelKey } from './server-connection.js';

/** Where a cancel goes: a compute, with that compute's own key for the backend. */
export interface CancelTarget {
  dbId: string;
  host: string;
  port: number;
  /** The compute's Unix socket, when the connection to cancel went over it: the cancel takes the same way. */
  socketPath?: string | null;
  computeKey: ComputeCancelKey;
}

/** A server connection a cancel can be meant for; `cancelling` holds it back from other clients until the cancel is done. */
export interface Cancellable {
  route: { host: string; port: number };
  conn: { cancelKey: ComputeCancelKey; socketPath?: string | null };
  cancelling: Promise<void> | null;
}

/**
 * The client a gateway key stands for. Its server connection changes (transaction
 * mode: per transaction; session mode: after a move), so the target is asked for
 * when the cancel arrives; a client holding no server has nothing to cancel.
 */
export interface CancelSubject {
  dbId: string;
  server(): Cancellable | null;
}

export interface GatewayCancelKey {
  processId: number;
  secretKey: number;
}

const CANCEL_TIMEOUT_MS = 5_000;

/** How CancelKeys reaches the other gateways (absent: a lone gateway, nothing to route). */
export interface CancelRouting {
  coordinator: Coordinator;
  gatewayId: string;
  logger: Logger;
}

/**
 * A key's registration outlives a dead gateway by at most this; a live gateway renews
 * its keys at a third of it, in one pipeline, so the cost is sessions / 200 s writes/s
 * rather than one per key per few seconds. A dead gateway's keys that have not lapsed
 * yet are harmless: a forward to them finds no subscriber and cancels nothing.
 */
export const CANCEL_KEY_TTL_MS = 10 * 60_000;

/**
 * The BackendKeyData the gateway gives each client (random, never the compute's)
 * and the compute session it stands for. With a CancelRouting, every key is also
 * registered with the coordinator (DESIGN §4): a CancelRequest that reaches another
 * gateway (or another worker on this port) is forwarded here, checked, and cancelled.
 */
export class CancelKeys {
  /** The secret is kept as the number it is: a 4-byte Buffer per session would be a slice keeping a shared pool block alive. */
  #byProcessId = new Map<number, { secretKey: number; target: CancelSubject }>();
  #routing: CancelRouting | undefined;
  #stops: Unsubscribe[] = [];
  #log: Logger | undefined;

  constructor(routing?: CancelRouting) {
    this.#routing = routing;
    if (!routing) return;
    const { coordinator, gatewayId, logger } = routing;
    this.#stops.push(
      coordinator.onCancelForwarded(gatewayId, (key) => void this.#cancelForwarded(key)),
      // A Redis that came back without its data forgot the keys: register the live ones again.
      coordinator.onReconnect(() => this.#renewAll()),
    );
    const renewing = setInterval(() => this.#renewAll(), Math.floor(CANCEL_KEY_TTL_MS / 3));
    renewing.unref();
    this.#stops.push(() => clearInterval(renewing));
    this.#log = logger;
  }

  issue(target: CancelSubject): GatewayCancelKey {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.#byProcessId.has(processId));
    const secretKey = randomInt(-(2 ** 31), 2 ** 31 - 1);
    this.#byProcessId.set(processId, { secretKey, target });
    // Not awaited: a new session must not wait for (or, in a Redis outage, on) the coordinator.
    this.#register(cancelKeyHex(processId, secretBytes(secretKey)));
    return { processId, secretKey };
  }

  release(key: GatewayCancelKey): void {
    const entry = this.#byProcessId.get(key.processId);
    if (!entry) return;
    this.#byProcessId.delete(key.processId);
    const routing = this.#routing;
    if (routing) routing.coordinator.unregisterCancelKey(cancelKeyHex(key.processId, secretBytes(entry.secretKey))).catch((err: Error) => this.#log?.warn({ err: err.message }, 'could not unregister a cancel key'));
  }

  /** Sends a key this gateway does not know to the gateway that gave it out; false when none did (or no routing). */
  async forward(processId: number, secretKey: Buffer): Promise<boolean> {
    // Keys this gateway gives out have 4-byte secrets; a longer one is nobody's here.
    if (!this.#routing || secretKey.length !== 4) return false;
    return this.#routing.coordinator.forwardCancel(cancelKeyHex(processId, secretKey));
  }

  stop(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }

  #register(key: string): void {
    const routing = this.#routing;
    if (!routing) return;
    routing.coordinator.registerCancelKey(key, routing.gatewayId, CANCEL_KEY_TTL_MS).catch((err: Error) => this.#log?.warn({ err: err.message }, 'could not register a cancel key'));
  }

  #renewAll(): void {
    for (const [processId, { secretKey }] of this.#byProcessId) this.#register(cancelKeyHex(processId, secretBytes(secretKey)));
  }

  async #cancelForwarded(key: string): Promise<void> {
    const { processId, secretKey } = parseCancelKeyHex(key);
    const log = this.#log!;
    // The same check as a CancelRequest that came here directly: the secret must match.
    if (!this.lookup(processId, secretKey)) {
      log.info({ process_id: processId }, 'forwarded cancel request for a key no longer here ignored');
      return;
    }
    await handleCancelRequest({ kind: 'cancel', processId, secretKey }, this, log, false);
  }

  /** The target for a CancelRequest, or undefined when the key is not one this gateway gave out. */
  lookup(processId: number, secretKey: Buffer): CancelSubject | undefined {
    const entry = this.#byProcessId.get(processId);
    if (!entry || secretKey.length !== 4 || !timingSafeEqual(secretKey, secretBytes(entry.secretKey))) return undefined;
    return entry.target;
  }

  get size(): number {
    return this.#byProcessId.size;
  }
}

/**
 * Answers a CancelRequest the way Postgres does: no reply, the connection is closed;
 * a matching key sends the compute its own CancelRequest; a key this gateway did not
 * give out goes to the gateway that did (once: a forwarded one is not forwarded again).
 */
export async function handleCancelRequest(req: CancelRequest, keys: CancelKeys, logger: Logger, mayForward = true): Promise<boolean> {
  const subject = keys.lookup(req.processId, req.secretKey);
  if (!subject) {
    const forwarded = mayForward && (await keys.forward(req.processId, req.secretKey).catch((err: Error) => (logger.warn({ err: err.message }, 'could not forward a cancel request'), false)));
    logger.info({ process_id: req.processId }, forwarded ? 'cancel request forwarded to the gateway that holds the session' : 'cancel request with an unknown key ignored');
    return forwarded;
  }
  const server = subject.server();
  if (!server) {
    logger.info({ db_id: subject.dbId }, 'cancel request for a client with nothing running ignored');
    return true;
  }
  const sent = cancelOnCompute({ dbId: subject.dbId, host: server.route.host, port: server.route.port, socketPath: server.conn.socketPath, computeKey: server.conn.cancelKey });
  // Until the compute has the signal, this server connection is not handed to another client (whose query it would cancel).
  const held = sent.catch(() => undefined);
  server.cancelling = held;
  await sent.catch((err: Error) => logger.warn({ db_id: subject.dbId, err: err.message }, 'could not pass a cancel request to the compute'));
  if (server.cancelling === held) server.cancelling = null;
  logger.info({ db_id: subject.dbId }, 'cancel request passed to the compute');
  return true;
}

/** Over the socket the cancelled connection used; one the gateway cannot open (gone since) falls back to TCP. */
export async function cancelOnCompute(target: CancelTarget): Promise<void> {
  if (!target.socketPath) return sendCancel(target, null);
  try {
    await sendCancel(target, target.socketPath);
  } catch (err) {
    if (!socketUnusable(err)) throw err;
    await sendCancel(target, null);
  }
}

function sendCancel(target: CancelTarget, socketPath: string | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = dialCompute(target, socketPath);
    const timer = setTimeout(() => socket.destroy(new Error('the compute did not close the cancel connection in time')), CANCEL_TIMEOUT_MS);
    socket.once('connect', () => socket.end(serialize.cancel(target.computeKey.processId, target.computeKey.secretKey)));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // Postgres closes the connection once it has signalled the backend.
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}

/** A BackendKeyData secret as its 4 bytes on the wire. */
function secretBytes(secretKey: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(secretKey, 0);
  return b;
}
