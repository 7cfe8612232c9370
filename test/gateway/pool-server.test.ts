import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PoolServer, queryMessage, type ServerClient } from '../../gateway/pool/pool-server.js';
import { ACTION, REQ } from '../../gateway/pool/request-queue.js';
import { ServerConnection } from '../../gateway/server-connection.js';
import { readyForQuery } from '../../gateway/wire/backend-messages.js';
import { SocketReads } from '../../gateway/wire/socket-reads.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

/** Two ends of a real TCP connection: `near` is the end under test, `far` records what reaches it. */
async function connection(onread?: net.OnReadOpts): Promise<{ near: net.Socket; far: net.Socket; received: () => Buffer }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const near = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', onread });
  await new Promise<void>((r) => near.once('connect', r));
  const far = await accepted;
  const chunks: Buffer[] = [];
  far.on('data', (c: Buffer) => chunks.push(c));
  cleanups.push(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far, received: () => Buffer.concat(chunks) };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};

const commandComplete = (tag: string) => {
  const text = Buffer.from(tag + '\0');
  const m = Buffer.alloc(5 + text.length);
  m[0] = 0x43;
  m.writeInt32BE(4 + text.length, 1);
  text.copy(m, 5);
  return m;
};

describe('a pool server changing hands at a transaction end', () => {
  it("keeps the last ReadyForQuery of the client that let go until flushHandedOver, so the next client's request can reach the compute first; each client gets exactly its own bytes", async () => {
    const reads = new SocketReads();
    const compute = await connection(reads.onread);
    reads.attach(compute.near);
    const conn = new ServerConnection(compute.near, { dbId: 'db', host: '127.0.0.1', port: 1, writerTerm: 1 }, { processId: 1, secretKey: 1 }, [], readyForQuery('I'), Buffer.alloc(0), reads);
    const server = new PoolServer(conn, { clientToCompute: 0, computeToClient: 0 }, () => undefined);
    const a = await connection();
    const b = await connection();
    const order: string[] = [];
    const next = queryMessage('SELECT 2');
    const clientA: ServerClient = {
      socket: a.near,
      readyForQuery(_status, idle) {
        if (!idle) return;
        // PooledClient.readyForQuery's order: let go, the pool hands the server on (here: to B, with its request), then the owed bytes go out.
        server.handOver();
        const computeBefore = compute.near.bytesWritten;
        server.link(clientB);
        server.queue.push(REQ.query, ACTION.forward);
        server.toServer.write(next);
        server.toServer.flush();
        if (compute.near.bytesWritten > computeBefore) order.push('request to the compute');
        const aBefore = a.near.bytesWritten;
        server.flushHandedOver();
        if (a.near.bytesWritten > aBefore) order.push('ReadyForQuery to the client that let go');
      },
      parameterChanged: () => undefined,
      serverLost: () => undefined,
    };
    const clientB: ServerClient = { socket: b.near, readyForQuery: () => undefined, parameterChanged: () => undefined, serverLost: () => undefined };

    server.link(clientA);
    server.queue.push(REQ.query, ACTION.forward);
    const answerA = Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]);
    compute.far.write(answerA);
    await until(() => order.length === 2);
    expect(order).toEqual(['request to the compute', 'ReadyForQuery to the client that let go']);
    await until(() => a.received().length === answerA.length && compute.received().length === next.length);
    expect(a.received()).toEqual(answerA);
    expect(compute.received()).toEqual(next);

    // What the compute says next is the new client's, not the old one's.
    const answerB = Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]);
    compute.far.write(answerB);
    await until(() => b.received().length === answerB.length);
    expect(b.received()).toEqual(answerB);
    expect(a.received()).toEqual(answerA);
    expect(server.client).toBe(clientB);
  });
});
