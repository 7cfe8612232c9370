import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { adoptAccepted, readsOf } from '../../gateway/wire/socket-reads.js';

/** A real TCP pair: the accepted side adopted as the gateway's listener does, its chunks recorded. */
async function adoptedPair(): Promise<{ client: net.Socket; chunks: Buffer[]; server: net.Server; accepted: Promise<net.Socket> }> {
  const chunks: Buffer[] = [];
  let resolveAccepted!: (s: net.Socket) => void;
  const accepted = new Promise<net.Socket>((r) => (resolveAccepted = r));
  const server = net.createServer({ pauseOnConnect: true }, (raw) => {
    const socket = adoptAccepted(raw);
    const reads = readsOf(socket)!;
    // Copies, as a reader must: the chunk is valid only during the call.
    reads.readWith((chunk) => chunks.push(Buffer.from(chunk)));
    resolveAccepted(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', noDelay: true });
  await new Promise<void>((r) => client.once('connect', r));
  return { client, chunks, server, accepted };
}

const total = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

let cleanup: (() => void) | null = null;
afterEach(() => cleanup?.());

describe('client socket reads into a reused buffer', () => {
  it('take the accepted connection over, starting small, growing for bulk data and shrinking back', async () => {
    const { client, chunks, server, accepted } = await adoptedPair();
    cleanup = () => {
      client.destroy();
      server.close();
    };
    const socket = await accepted;
    expect(readsOf(socket)).toBeDefined();

    // Bulk: 1 MiB in one write. The first read fits the small buffer; once one fills it, reads are larger.
    const bulk = randomBytes(1 << 20);
    client.write(bulk);
    await until(() => total(chunks) === bulk.length);
    expect(createHash('md5').update(Buffer.concat(chunks)).digest('hex')).toBe(createHash('md5').update(bulk).digest('hex'));
    expect(chunks[0]!.length).toBeLessThanOrEqual(1024);
    expect(Math.max(...chunks.map((c) => c.length))).toBeGreaterThan(1024);

    // A run of small reads (one message at a time, as an OLTP client sends): the buffer goes back to small.
    chunks.length = 0;
    for (let i = 0; i < 70; i++) {
      client.write(Buffer.alloc(100, i));
      await until(() => total(chunks) === (i + 1) * 100);
    }
    chunks.length = 0;
    client.write(randomBytes(64 * 1024));
    await until(() => total(chunks) === 64 * 1024);
    expect(chunks[0]!.length).toBeLessThanOrEqual(1024);
  });

  it('leaves the server able to close once the adopted sockets are gone', async () => {
    const { client, server, accepted } = await adoptedPair();
    const socket = await accepted;
    const closed = new Promise<void>((r) => server.close(() => r()));
    client.destroy();
    socket.destroy();
    await closed;
  });
});
