import type { Socket } from 'node:net';
import type { RelayedBytes } from './metrics.js';
import type { ServerConnection } from './server-connection.js';

/** How long a client may take to read the last bytes after its compute closed. */
const DRAIN_AFTER_SERVER_CLOSE_MS = 10_000;

/**
 * Session mode: the client's startup is finished with `greeting` (the compute's
 * ParameterStatus, the gateway's own BackendKeyData, ReadyForQuery), then bytes
 * flow both ways as buffers, unparsed, with backpressure from `pipe`.
 * Resolves when both sides are closed.
 */
export function relay(client: Socket, clientReadAhead: Buffer, server: ServerConnection, greeting: Buffer, bytes: RelayedBytes): Promise<void> {
  const compute = server.socket;
  client.write(greeting);
  if (server.readAhead.length > 0) {
    bytes.computeToClient += server.readAhead.length;
    client.write(server.readAhead);
  }
  if (clientReadAhead.length > 0) {
    bytes.clientToCompute += clientReadAhead.length;
    compute.write(clientReadAhead);
  }
  compute.on('data', (chunk: Buffer) => (bytes.computeToClient += chunk.length));
  client.on('data', (chunk: Buffer) => (bytes.clientToCompute += chunk.length));
  compute.pipe(client);
  client.pipe(compute);

  const clientClosed = new Promise<void>((resolve) => (client.destroyed ? resolve() : client.once('close', () => resolve())));
  const computeClosed = new Promise<void>((resolve) => (compute.destroyed ? resolve() : compute.once('close', () => resolve())));
  client.on('error', () => compute.destroy());
  compute.on('error', () => client.end());
  // The client left: nothing more is owed to it, and its session on the compute ends now.
  void clientClosed.then(() => compute.destroy());
  // The compute closed (after a FATAL, say): the client still gets every byte it sent, then its connection ends.
  void computeClosed.then(() => {
    client.end();
    setTimeout(() => client.destroy(), DRAIN_AFTER_SERVER_CLOSE_MS).unref();
  });
  return Promise.all([clientClosed, computeClosed]).then(() => undefined);
}
