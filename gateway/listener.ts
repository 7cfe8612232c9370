import net from 'node:net';
import type { Logger } from '../core/index.js';
import { ClientsPerAddress } from './address-limits.js';
import { adoptAccepted } from './wire/socket-reads.js';

export interface Listener {
  port: number;
  /** Stops accepting and ends every open client connection. */
  close(): Promise<void>;
}

/**
 * The gateway's TCP listener: every accepted socket goes to `serve`, which owns it
 * and never throws. Sockets are tracked so `close()` ends them all.
 */
export function listen(host: string, port: number, serve: (socket: net.Socket) => Promise<void>, logger: Logger, maxClientsPerAddress = 0, onRefused?: () => void): Promise<Listener> {
  const open = new Set<net.Socket>();
  // One listener for every socket (`this` is the socket), and `on`, not `once`: a socket closes once, and each `once` keeps two more objects per client.
  const forget = function (this: net.Socket): void {
    open.delete(this);
  };
  const perAddress = new ClientsPerAddress(maxClientsPerAddress, onRefused);
  // Paused on connect: nothing is read before `adoptAccepted` moves the socket to reads into a reused buffer.
  const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, pauseOnConnect: true }, (accepted) => {
    const socket = adoptAccepted(accepted);
    if (socket === accepted) socket.resume();
    open.add(socket);
    socket.on('close', forget);
    if (!perAddress.admit(socket)) return;
    serve(socket).catch((err: Error) => {
      // serve() handles its own errors; this is the last guard that keeps the process up.
      logger.error({ err }, 'client connection handler failed');
      socket.destroy();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'gateway listener error'));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of open) socket.destroy();
          }),
      });
    });
  });
}
