import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketFile } from '../../bench/fixtures/compute-socket.js';
import { NodeRelay, nodeRelayTarget } from '../../bench/fixtures/node-relay.js';
import { nodeRelayNote } from '../../bench/scenarios/throughput.js';

/** Echo servers on TCP and on a Unix socket (the two ways the relay reaches a compute). */
let tcpEcho: net.Server;
let unixEcho: net.Server;
let echoPort: number;
let socketDir: string;
const UNIX_PORT = 5999;
beforeAll(async () => {
  const echo = () => net.createServer((s) => s.pipe(s));
  tcpEcho = echo();
  await new Promise<void>((resolve) => tcpEcho.listen(0, '127.0.0.1', resolve));
  echoPort = (tcpEcho.address() as net.AddressInfo).port;
  // World-readable dir: the relay runs as the proxies' user (nobody) when the tests run as root.
  socketDir = await mkdtemp(path.join(tmpdir(), 'pgwake-relay-test-'));
  await chmod(socketDir, 0o777);
  unixEcho = echo();
  await new Promise<void>((resolve) => unixEcho.listen(socketFile(socketDir, UNIX_PORT), resolve));
  await chmod(socketFile(socketDir, UNIX_PORT), 0o777);
});
afterAll(async () => {
  await Promise.all([tcpEcho, unixEcho].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await rm(socketDir, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** Sends `payload` through the relay in `chunk`-byte writes, collects as many bytes back, then ends. */
function roundTrip(port: number, payload: Buffer, chunk = payload.length): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let n = 0;
    const s = net.connect(port, '127.0.0.1', () => {
      for (let i = 0; i < payload.length; i += chunk) s.write(payload.subarray(i, i + chunk));
    });
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) s.end();
    });
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
  });
}

/** Reads everything the relay passes on, pausing now and then (a slow client: the relay's writes to it queue). */
function slowRead(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let sincePause = 0;
    const s = net.connect(port, '127.0.0.1');
    s.on('data', (d: Buffer) => {
      got.push(d);
      sincePause += d.length;
      if (sincePause > 2 * 1024 * 1024) {
        sincePause = 0;
        s.pause();
        setTimeout(() => s.resume(), 100);
      }
    });
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
  });
}

const refused = (port: number) => new Promise<boolean>((resolve) => net.connect(port, '127.0.0.1', () => resolve(false)).once('error', () => resolve(true)));

describe('the bare Node relay, the bench\'s Node reference', () => {
  it('names its target as the compute\'s socket file or host:port', () => {
    expect(nodeRelayTarget({ host: '/tmp/x/socket', port: 5432 })).toBe('/tmp/x/socket/.s.PGSQL.5432');
    expect(nodeRelayTarget({ host: '127.0.0.1', port: 5432 })).toBe('127.0.0.1:5432');
  });

  it('relays many small messages and several MB both ways intact over TCP, and stops', async () => {
    const relay = await NodeRelay.start({ host: '127.0.0.1', port: echoPort });
    try {
      expect((await roundTrip(relay.port, Buffer.from('ping through the relay'))).toString()).toBe('ping through the relay');
      // Query-sized writes back to back: chunks are read into a reused buffer, so any overwrite of queued bytes shows here.
      const small = randomBytes(200_000);
      expect(md5(await roundTrip(relay.port, small, 37))).toBe(md5(small));
      const large = randomBytes(12 * 1024 * 1024);
      const back = await roundTrip(relay.port, large);
      expect(back.length).toBe(large.length);
      expect(md5(back)).toBe(md5(large));
      // Several clients at once, each its own upstream connection.
      const many = Array.from({ length: 8 }, () => randomBytes(1024 * 1024));
      const backs = await Promise.all(many.map((p) => roundTrip(relay.port, p, 16 * 1024)));
      expect(backs.map(md5)).toEqual(many.map(md5));
      expect(relay.target({ host: '127.0.0.1', port: echoPort, user: 'u', password: 'p', database: 'd' }).port).toBe(relay.port);
    } finally {
      await relay.stop();
    }
    expect(await refused(relay.port)).toBe(true);
  });

  it('passes a stream on intact to a client slower than its server', async () => {
    const blob = randomBytes(16 * 1024 * 1024);
    // Small pieces, one per turn of the loop, so the relay reads small chunks and its writes of them queue
    // while the client pauses: a chunk whose write is queued must not be read over.
    const source = net.createServer((s) => {
      let i = 0;
      const next = () => {
        if (i >= blob.length) return s.end();
        s.write(blob.subarray(i, (i += 2048)));
        setImmediate(next);
      };
      next();
    });
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const relay = await NodeRelay.start({ host: '127.0.0.1', port: (source.address() as net.AddressInfo).port });
    try {
      const got = await slowRead(relay.port);
      expect(got.length).toBe(blob.length);
      expect(md5(got)).toBe(md5(blob));
    } finally {
      await relay.stop();
      await new Promise<void>((resolve) => source.close(() => resolve()));
    }
  });

  it('reaches its target over a Unix socket as PgBouncer and haproxy do', async () => {
    const relay = await NodeRelay.start({ host: socketDir, port: UNIX_PORT });
    try {
      const large = randomBytes(6 * 1024 * 1024);
      expect(md5(await roundTrip(relay.port, large, 64 * 1024))).toBe(md5(large));
    } finally {
      await relay.stop();
    }
    expect(await refused(relay.port)).toBe(true);
  });

  it('never reads over a chunk whose write is still queued (small messages to a server not reading yet)', async () => {
    // A Unix socket's buffer is small, so the relay's writes queue soon; messages paced a timer apart
    // arrive one per read, each under the write queue's high-water mark, so reading goes on meanwhile.
    const file = socketFile(socketDir, UNIX_PORT + 1);
    let received!: (b: Buffer) => void;
    const arrived = new Promise<Buffer>((resolve) => (received = resolve));
    const sink = net.createServer((s) => {
      const got: Buffer[] = [];
      s.pause();
      setTimeout(() => s.resume(), 500);
      s.on('data', (d: Buffer) => got.push(d));
      // The readiness probe's connection reaches the sink too, empty: only the one that sent bytes counts.
      s.on('end', () => (got.length > 0 && received(Buffer.concat(got)), s.end()));
    });
    await new Promise<void>((resolve) => sink.listen(file, resolve));
    await chmod(file, 0o777);
    const relay = await NodeRelay.start({ host: socketDir, port: UNIX_PORT + 1 });
    try {
      const sent = randomBytes(1024 * 1024);
      const c = net.connect(relay.port, '127.0.0.1', () => {
        let i = 0;
        const next = () => {
          if (i >= sent.length) return c.end();
          c.write(sent.subarray(i, (i += 1024)));
          setTimeout(next, 0);
        };
        next();
      });
      c.on('error', () => undefined);
      const got = await arrived;
      expect(got.length).toBe(sent.length);
      expect(md5(got)).toBe(md5(sent));
    } finally {
      await relay.stop();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });

  it('closes the client when its target refuses, and keeps serving', async () => {
    const relay = await NodeRelay.start({ host: socketDir, port: 1 });
    try {
      const closed = await new Promise<string>((resolve) => {
        const s = net.connect(relay.port, '127.0.0.1', () => s.write('hello'));
        s.on('data', () => resolve('data'));
        s.on('close', () => resolve('closed'));
        s.on('error', () => undefined);
      });
      expect(closed).toBe('closed');
      expect(await refused(relay.port)).toBe(false);
    } finally {
      await relay.stop();
    }
  });

  it('fails to start with the reason when the relay exits or its script is missing', async () => {
    const failing = path.join(socketDir, 'failing-relay.mjs');
    await writeFile(failing, "process.stderr.write('cannot relay today'); process.exit(3);\n");
    await expect(NodeRelay.start({ host: '127.0.0.1', port: echoPort }, failing)).rejects.toThrow(/node relay exited: cannot relay today/);
    await expect(NodeRelay.start({ host: '127.0.0.1', port: echoPort }, '/nonexistent/relay.mjs')).rejects.toThrow(/ENOENT/);
  });
});

describe('the bare Node relay\'s note', () => {
  it('says what the two gaps are, and quotes only the figures it has', () => {
    const bare = nodeRelayNote();
    expect(bare).toContain('what Node itself costs per forwarded message');
    expect(bare).toContain('pgwake\'s own work');
    expect(bare).not.toMatch(/reaches \d/);
    const full = nodeRelayNote({ cell: 'select-only -c 20 -M simple', relayOverDirect: 0.634, bouncerOverRelay: 1.02, pgwakeOverRelay: 0.96 });
    expect(full).toContain('Here (select-only -c 20 -M simple, medians of within-round ratios) it reaches 0.63 × direct Postgres, PgBouncer (session) 1.02 × the relay, pgwake (session) 0.96 × the relay.');
    const partial = nodeRelayNote({ cell: 'c', relayOverDirect: 0.6 });
    expect(partial).toContain('it reaches 0.60 × direct Postgres.');
    expect(partial).not.toContain('PgBouncer (session)');
    expect(nodeRelayNote({ cell: 'c', relayOverDirect: Number.NaN })).toBe(bare);
  });
});
