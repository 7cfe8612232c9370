import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { directWritesAvailable, writeToSocket } from '../../gateway/wire/socket-writes.js';

/** A writer and its peer over a real socket; the peer starts paused and records what it reads once resumed. */
interface Pair {
  writer: net.Socket;
  peer: net.Socket;
  received: Buffer[];
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

type Transport = 'tcp' | 'unix';

async function listen(transport: Transport, server: net.Server): Promise<net.NetConnectOpts> {
  if (transport === 'tcp') {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'pgwake-writes-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  await new Promise<void>((r) => server.listen(path, r));
  return { path };
}

async function pair(transport: Transport, writerOptions: Partial<net.NetConnectOpts> = {}): Promise<Pair> {
  let accepted!: (s: net.Socket) => void;
  const peerP = new Promise<net.Socket>((r) => (accepted = r));
  const server = net.createServer({ pauseOnConnect: true }, accepted);
  const where = await listen(transport, server);
  const writer = net.connect({ ...where, ...writerOptions } as net.NetConnectOpts);
  await new Promise<void>((r, j) => writer.once('connect', r).once('error', j));
  const peer = await peerP;
  const received: Buffer[] = [];
  peer.pause();
  peer.on('data', (c: Buffer) => received.push(c));
  peer.on('error', () => {});
  cleanups.push(() => {
    writer.destroy();
    peer.destroy();
    server.close();
  });
  return { writer, peer, received };
}

/** A writer that can stop reading at the handle (pause() with `onread` does) and keeps its writing side open at EOF. */
const notReading = { allowHalfOpen: true, onread: { buffer: Buffer.alloc(1024), callback: () => true } } as const;

const total = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);
const md5 = (b: Buffer | Buffer[]) => createHash('md5').update(Array.isArray(b) ? Buffer.concat(b) : b).digest('hex');

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

/** Writes `size`-byte pieces until one stays queued; returns what was written. */
function fillUntilQueued(socket: net.Socket, size: number, limit = 2000): Buffer[] {
  const sent: Buffer[] = [];
  for (let i = 0; i < limit; i++) {
    const b = randomBytes(size);
    sent.push(b);
    if (writeToSocket(socket, b)) return sent;
  }
  throw new Error(`no write of ${limit} × ${size} bytes stayed queued`);
}

it('the stream_wrap binding is there on this Node (else every test below only covers the fallback)', () => {
  expect(directWritesAvailable).toBe(true);
});

describe.each(['tcp', 'unix'] as const)('direct socket writes over %s', (transport) => {
  it('many small writes, alone and mixed with plain socket.write, arrive intact and in order', async () => {
    const { writer, peer, received } = await pair(transport);
    peer.resume();
    const sent: Buffer[] = [];
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(2 + (i % 97), i & 0xff);
      b.writeUInt16BE(i, 0); // a sequence number: any reordering shows
      sent.push(b);
      if (i % 3 === 2) writer.write(b);
      else writeToSocket(writer, b);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    const want = Buffer.concat(sent);
    await until(() => total(received) === want.length);
    expect(Buffer.concat(received).equals(want)).toBe(true);
    expect(writer.bytesWritten).toBe(want.length);
  });

  it('a write does not overtake bytes the Writable holds (corked, or written while still connecting)', async () => {
    const { writer, peer, received } = await pair(transport);
    peer.resume();
    const a = Buffer.from('first;');
    const b = Buffer.from('second;');
    writer.cork();
    writer.write(a);
    expect(writeToSocket(writer, b)).toBe(true); // held behind `a` in the Writable
    writer.uncork();
    writeToSocket(writer, Buffer.from('third;'));
    await until(() => total(received) === 19);
    expect(Buffer.concat(received).toString()).toBe('first;second;third;');
  });

  it('a large write to a peer that does not read stays queued without a copy, later writes queue behind it, all arrive', async () => {
    const { writer, peer, received } = await pair(transport);
    // Larger than what the kernel takes at once (loopback TCP: a few MB; a Unix socket: far less).
    const big = randomBytes(24 << 20);
    const bigHash = md5(big);
    expect(writeToSocket(writer, big)).toBe(true);
    // It went to the handle, not the Writable: the Writable holds nothing.
    expect(writer.writableLength).toBe(0);
    // Not copied: libuv sends from `big` itself, so a change to its unsent tail reaches the peer.
    // (Which is why a caller must leave the buffer alone while the write is queued.)
    const tail = randomBytes(1 << 20);
    tail.copy(big, big.length - tail.length);
    const want = [big];

    // Later writes, from a buffer the caller reuses (as the gateway's read buffer): each queues behind.
    const scratch = Buffer.alloc(256 << 10);
    for (let i = 0; i < 8; i++) {
      randomBytes(scratch.length).copy(scratch);
      const piece = Buffer.from(scratch); // what the caller wrote
      expect(writeToSocket(writer, piece)).toBe(true);
      want.push(piece);
      scratch.fill(0xee); // the caller overwrites its own buffer: not what was passed
    }
    expect(writer.bytesWritten).toBe(total(want));

    peer.resume();
    await until(() => total(received) === total(want));
    const got = Buffer.concat(received);
    expect(md5(got)).toBe(md5(want));
    expect(md5(got.subarray(0, big.length))).not.toBe(bigHash);
    expect(got.subarray(big.length - tail.length, big.length).equals(tail)).toBe(true);
    expect(writer.bytesWritten).toBe(total(want));
  });

  it('backpressure: writableNeedDrain turns true while the peer does not read, and drain fires once it does', async () => {
    const { writer, peer, received } = await pair(transport);
    const sent = fillUntilQueued(writer, 64 << 10);
    // One write may be in flight outside the Writable; the next ones are the Writable's.
    let extra = 0;
    while (!writer.writableNeedDrain && extra < 3) {
      const b = randomBytes(64 << 10);
      sent.push(b);
      writeToSocket(writer, b);
      extra++;
    }
    expect(writer.writableNeedDrain).toBe(true);
    expect(extra).toBe(1);
    let drained = false;
    writer.once('drain', () => (drained = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    peer.resume();
    await until(() => drained);
    await until(() => total(received) === total(sent));
    expect(md5(received)).toBe(md5(sent));
    expect(writer.bytesWritten).toBe(total(sent));
  });

  it('a write failing at once (peer gone) destroys the socket with the write error, nothing thrown', async () => {
    // allowHalfOpen and not reading: only the writes can find out the peer is gone.
    const { writer, peer } = await pair(transport, notReading);
    writer.pause();
    const errors: NodeJS.ErrnoException[] = [];
    writer.on('error', (e) => errors.push(e));
    let closed = false;
    writer.on('close', () => (closed = true));
    peer.destroy();
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 50 && !writer.destroyed; i++) {
      expect(() => writeToSocket(writer, Buffer.alloc(100, i))).not.toThrow();
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => closed);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.syscall).toBe('write');
    expect(['EPIPE', 'ECONNRESET']).toContain(errors[0]!.code);
  });

  it('a queued direct write failing later (peer gone) destroys the socket, nothing thrown', async () => {
    const { writer, peer } = await pair(transport, notReading);
    writer.pause(); // with `onread`, this stops reading at the handle: only the write can see the reset
    const errors: NodeJS.ErrnoException[] = [];
    writer.on('error', (e) => errors.push(e));
    let closed = false;
    writer.on('close', () => (closed = true));
    expect(writeToSocket(writer, randomBytes(24 << 20))).toBe(true);
    expect(writer.writableLength).toBe(0); // only libuv knows about it
    peer.destroy(); // unread data: the peer resets the connection
    await until(() => closed);
    expect(writer.destroyed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.syscall).toBe('write');
  });
});

describe('sockets that take the plain socket.write', () => {
  it('a socket still connecting: its writes are held and arrive once connected, in order', async () => {
    const server = net.createServer((s) => {
      s.on('data', (c: Buffer) => received.push(c));
    });
    const received: Buffer[] = [];
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const writer = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
    cleanups.push(() => {
      writer.destroy();
      server.close();
    });
    expect(writer.connecting).toBe(true);
    // Held by the Writable until the connection is up: queued, so the caller must keep it.
    expect(writeToSocket(writer, Buffer.from('one;'))).toBe(true);
    expect(writer.writableLength).toBe(4);
    expect(writeToSocket(writer, Buffer.from('two;'))).toBe(true);
    await new Promise<void>((r) => writer.once('connect', r));
    writeToSocket(writer, Buffer.from('three;'));
    await until(() => total(received) === 14);
    expect(Buffer.concat(received).toString()).toBe('one;two;three;');
    expect(writer.bytesWritten).toBe(14);
  });

  it('a TLS socket (as the gateway accepts them): writes go through TLS (the Writable queues them) and arrive intact', async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec' });
    const received: Buffer[] = [];
    let accepted!: (s: tls.TLSSocket) => void;
    const writerP = new Promise<tls.TLSSocket>((r) => (accepted = r));
    const server = tls.createServer({ key: pems.private, cert: pems.cert }, accepted);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const peer = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
    cleanups.push(() => {
      peer.destroy();
      server.close();
    });
    peer.pause();
    peer.on('data', (c: Buffer) => received.push(c));
    const writer = await writerP;
    // Fresh from the handshake, nothing is queued anywhere: a direct write would be tried here
    // (and the TLS handle does not take one: Node aborts).
    expect(writer.writableLength).toBe(0);
    const sent: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(50, i);
      sent.push(b);
      writeToSocket(writer, b);
    }
    const big = randomBytes(16 << 20);
    sent.push(big);
    expect(writeToSocket(writer, big)).toBe(true);
    // The fallback: the Writable holds it (a direct write would have left it empty).
    expect(writer.writableLength).toBeGreaterThan(0);
    peer.resume();
    await until(() => total(received) === total(sent));
    expect(md5(received)).toBe(md5(sent));
  });
});
