import type { Socket } from 'node:net';
import type { RelayedBytes } from './metrics.js';

/**
 * What the relay step costs the metrics: nothing on the hot path. Bytes moved
 * between clients and computes are read off the compute sockets' own counters
 * when Prometheus scrapes (`countLiveBytes`) and when a connection closes. The
 * forwarding itself lives with the server connection (pool/pool-server.ts) and
 * the client (pool/pooled-client.ts): both modes cut the streams into messages
 * and pass them on as byte ranges.
 */
interface Tracked {
  counted: RelayedBytes;
  compute: Socket;
  offset: RelayedBytes;
}

const live = new Set<Tracked>();

/** Adds what live compute connections moved since the last call. */
export function countLiveBytes(): void {
  for (const t of live) settle(t);
}

function settle(t: Tracked): void {
  const toCompute = t.compute.bytesWritten;
  const fromCompute = t.compute.bytesRead;
  t.counted.clientToCompute += toCompute - t.offset.clientToCompute;
  t.counted.computeToClient += fromCompute - t.offset.computeToClient;
  t.offset.clientToCompute = toCompute;
  t.offset.computeToClient = fromCompute;
}

/** Counts a compute connection's bytes from now on (its login is not client traffic); returns the call that stops it. */
export function trackComputeBytes(compute: Socket, counted: RelayedBytes, readAhead = 0): () => void {
  const t: Tracked = { counted, compute, offset: { clientToCompute: compute.bytesWritten, computeToClient: compute.bytesRead - readAhead } };
  live.add(t);
  return () => {
    if (!live.delete(t)) return;
    settle(t);
  };
}
