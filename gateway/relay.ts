import type { Socket } from 'node:net';
import type { RelayedBytes } from './metrics.js';
import type { ServerConnection } from './server-connection.js';

/** How long a client may take to read the last bytes after its compute closed. */
const DRAIN_AFTER_SERVER_CLOSE_MS = 10_000;

/** Sessions being relayed now, so a scrape can count the bytes they moved so far. */
const live = new Set<{ counted: RelayedBytes; compute: Socket; offset: RelayedBytes }>();

/**
 * Adds what live sessions relayed since the last call to `into`. Bytes are read off
 * the sockets' own counters at scrape time: the hot path does no bookkeeping at all.
 */
export function countLiveBytes(): void {
  for (const session of live) settle(session);
}

function settle(session: { counted: RelayedBytes; compute: Socket; offset: RelayedBytes }): void {
  const toCompute = session.compute.bytesWritten;
  const fromCompute = session.compute.bytesRead;
  session.counted.clientToCompute += toCompute - session.offset.clientToCompute;
  session.counted.computeToClient += fromCompute - session.offset.computeToClient;
  session.offset.clientToCompute = toCompute;
  session.offset.computeToClient = fromCompute;
}

/**
 * Session mode: the client's startup is finished with `greeting` (the compute's
 * ParameterStatus, the gateway's own BackendKeyData, ReadyForQuery), then bytes
 * flow both ways as buffers, unparsed, with backpressure from `pipe`.
 * Resolves when both sides are closed.
 */
export function relay(client: Socket, clientReadAhead: Buffer, server: ServerConnection, greeting: Buffer, bytes: RelayedBytes): Promise<void> {
  const compute = server.socket;
  // The compute's login exchange is not the client's traffic: count from here on.
  const session = { counted: bytes, compute, offset: { clientToCompute: compute.bytesWritten, computeToClient: compute.bytesRead } };
  bytes.computeToClient += server.readAhead.length;
  live.add(session);
  client.write(server.readAhead.length > 0 ? Buffer.concat([greeting, server.readAhead]) : greeting);
  if (clientReadAhead.length > 0) compute.write(clientReadAhead);
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
  return Promise.all([clientClosed, computeClosed]).then(() => {
    settle(session);
    live.delete(session);
  });
}
