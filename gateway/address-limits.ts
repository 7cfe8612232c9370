import type { Socket } from 'node:net';
import { errorResponse, SQLSTATE } from './errors.js';

/** How long a refused client has to read its error before the socket is destroyed. */
const REFUSED_LINGER_MS = 2_000;

/**
 * A cap on the client connections one source address holds open at this gateway
 * (`PGWAKE_MAX_CLIENTS_PER_ADDRESS`), counted from accept, before any byte is read:
 * one host cannot take every file descriptor, even with connections that never log in.
 */
export class ClientsPerAddress {
  #open = new Map<string, number>();

  constructor(private readonly max: number, private readonly onRefused: () => void = () => undefined) {}

  /** Counts the socket until it closes; false (and the client told 53300) when its address is at the cap. */
  admit(socket: Socket): boolean {
    if (this.max <= 0) return true;
    const address = socket.remoteAddress ?? 'unknown';
    const n = this.#open.get(address) ?? 0;
    if (n >= this.max) {
      refuse(socket, address, this.max);
      this.onRefused();
      return false;
    }
    this.#open.set(address, n + 1);
    socket.on('close', () => {
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left <= 0) this.#open.delete(address);
      else this.#open.set(address, left);
    });
    return true;
  }
}

function refuse(socket: Socket, address: string, max: number): void {
  // Sent at once: a client reads it as the answer to its startup (or SSL) request, as it would Postgres's "too many clients".
  socket.on('error', () => socket.destroy());
  socket.resume();
  socket.end(
    errorResponse({
      sqlstate: SQLSTATE.tooManyConnections,
      message: `too many connections from address ${address}`,
      detail: `the gateway allows ${max} open connections per client address (PGWAKE_MAX_CLIENTS_PER_ADDRESS)`,
      hint: 'close idle connections or use a connection pool',
    }),
  );
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}
