import { randomInt, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import type { Logger } from '../core/index.js';
import type { CancelRequest } from './handshake.js';
import type { ComputeCancelKey } from './server-connection.js';

/** Where a cancel goes: a compute, with that compute's own key for the backend. */
export interface CancelTarget {
  dbId: string;
  host: string;
  port: number;
  computeKey: ComputeCancelKey;
}

/** A server connection a cancel can be meant for; `cancelling` holds it back from other clients until the cancel is done. */
export interface Cancellable {
  route: { host: string; port: number };
  conn: { cancelKey: ComputeCancelKey };
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

/**
 * The BackendKeyData the gateway gives each client (random, never the compute's)
 * and the compute session it stands for.
 */
export class CancelKeys {
  #byProcessId = new Map<number, { secret: Buffer; target: CancelSubject }>();

  issue(target: CancelSubject): GatewayCancelKey {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.#byProcessId.has(processId));
    const secretKey = randomInt(-(2 ** 31), 2 ** 31 - 1);
    const secret = Buffer.allocUnsafe(4);
    secret.writeInt32BE(secretKey, 0);
    this.#byProcessId.set(processId, { secret, target });
    return { processId, secretKey };
  }

  release(key: GatewayCancelKey): void {
    this.#byProcessId.delete(key.processId);
  }

  /** The target for a CancelRequest, or undefined when the key is not one this gateway gave out. */
  lookup(processId: number, secretKey: Buffer): CancelSubject | undefined {
    const entry = this.#byProcessId.get(processId);
    if (!entry || secretKey.length !== entry.secret.length || !timingSafeEqual(secretKey, entry.secret)) return undefined;
    return entry.target;
  }

  get size(): number {
    return this.#byProcessId.size;
  }
}

/**
 * Answers a CancelRequest the way Postgres does: no reply, the connection is closed;
 * a matching key sends the compute its own CancelRequest.
 */
export async function handleCancelRequest(req: CancelRequest, keys: CancelKeys, logger: Logger): Promise<boolean> {
  const subject = keys.lookup(req.processId, req.secretKey);
  if (!subject) {
    logger.info({ process_id: req.processId }, 'cancel request with an unknown key ignored');
    return false;
  }
  const server = subject.server();
  if (!server) {
    logger.info({ db_id: subject.dbId }, 'cancel request for a client with nothing running ignored');
    return true;
  }
  const sent = cancelOnCompute({ dbId: subject.dbId, host: server.route.host, port: server.route.port, computeKey: server.conn.cancelKey });
  // Until the compute has the signal, this server connection is not handed to another client (whose query it would cancel).
  const held = sent.catch(() => undefined);
  server.cancelling = held;
  await sent.catch((err: Error) => logger.warn({ db_id: subject.dbId, err: err.message }, 'could not pass a cancel request to the compute'));
  if (server.cancelling === held) server.cancelling = null;
  logger.info({ db_id: subject.dbId }, 'cancel request passed to the compute');
  return true;
}

export function cancelOnCompute(target: CancelTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
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
