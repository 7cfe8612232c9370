import { readdirSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantDb, metricsText, pgClient, sample, startGatewayStack, startupPacket, waitFor, type TenantDb } from '../gateway/support.js';
import type { TestStack } from '../support/stack.js';

/**
 * Thousands of malformed connections against a real gateway (in this process, so
 * its file descriptors are ours to count): afterwards a normal client still gets
 * in, and open connections, fds and heap are back near where they started.
 */
const CONNECTIONS = Number(process.env.PGWAKE_FLOOD_CONNECTIONS ?? 2_000);
const CONCURRENCY = 64;
/** Every malformed connection this long at most: clients that stall are ended by the startup deadline. */
const STARTUP_TIMEOUT_MS = 1_000;

let stack: TestStack;
let t: TenantDb;
let port: number;

beforeAll(async () => {
  // Bans off: a ban would stop the SASL garbage before the parsers this test floods (bans have tests of their own).
  stack = await startGatewayStack({ PGWAKE_STARTUP_TIMEOUT_MS: String(STARTUP_TIMEOUT_MS), PGWAKE_BAN_FAILED_LOGINS: '0' });
  t = await createTenantDb(stack);
  port = stack.gateway!.port;
}, 120_000);

afterAll(async () => {
  await stack?.destroy();
});

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
};
const SSL_REQUEST = Buffer.concat([int32(8), int32(80877103)]);
const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256)));
const fdCount = () => readdirSync('/proc/self/fd').length;
const gatewayConnections = async () => sample(await metricsText(stack), 'pgwake_gateway_connections');

type Attack = (socket: net.Socket) => void;

/** The kinds of bad client, each a way a real one breaks or an attacker probes. */
function attacks(user: string): Attack[] {
  const startup = startupPacket({ user, database: 'app' });
  const sasl = (body: Buffer) => Buffer.concat([Buffer.from('p'), int32(body.length + 4), body]);
  return [
    (s) => s.end(randomBytes(1 + Math.floor(Math.random() * 300))),
    (s) => s.end(startup.subarray(0, 1 + Math.floor(Math.random() * (startup.length - 1)))), // truncated startup, then gone
    (s) => s.write(startup.subarray(0, 6)), // truncated startup, then silence: the startup deadline ends it
    (s) => s.end(Buffer.concat([int32(Math.floor(Math.random() * 2 ** 31) * (Math.random() < 0.5 ? -1 : 1)), int32(196608)])), // bad length
    (s) => s.end(Buffer.concat([int32(9_999), int32(196608), randomBytes(100)])), // announces more than it sends
    (s) => s.end(SSL_REQUEST), // SSL, then gone before the TLS handshake
    (s) => {
      s.write(SSL_REQUEST);
      s.once('data', () => s.end(randomBytes(50))); // SSL, then garbage instead of a ClientHello
    },
    (s) => {
      // SSL, then half a TLS handshake: a real ClientHello, and the connection dropped under it.
      s.write(SSL_REQUEST);
      s.once('data', () => {
        const secure = tls.connect({ socket: s, rejectUnauthorized: false });
        secure.on('error', () => undefined);
        secure.once('secureConnect', () => secure.destroy());
        setTimeout(() => s.destroy(), Math.random() * 20);
      });
    },
    (s) => s.end(Buffer.concat([startup, sasl(randomBytes(40))])), // SASL garbage
    (s) => s.end(Buffer.concat([startup, sasl(Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int32(5), Buffer.from('n,,n=')]))])), // client-first without a nonce
    (s) => s.end(Buffer.concat([startup, Buffer.from('p'), int32(1_000_000_000)])), // an oversize SASL message
    (s) => s.end(Buffer.concat([startup, Buffer.from('Q'), int32(13), Buffer.from('select 1\0')])), // a query before authenticating
  ];
}

/** One bad connection: connect, misbehave, and wait until the gateway or the client ends it. */
function malformed(attack: Attack): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('connect', () => attack(socket));
    socket.once('close', () => resolve());
    // A client that sent nothing complete must be ended by the gateway's startup deadline, not by us.
    setTimeout(() => socket.destroy(), STARTUP_TIMEOUT_MS * 5).unref();
  });
}

describe('a flood of malformed connections', () => {
  it(`${CONNECTIONS} malformed connections: a normal client still gets in; connections, fds and heap return to their baseline`, async () => {
    // Warm up: the first real session (the compute wakes) and a few bad ones, so lazily made things exist before the baseline.
    const warm = pgClient(stack, t);
    await warm.connect();
    await warm.query('select 1');
    await warm.end();
    const kinds = attacks(t.tenant.pg_user);
    await Promise.all(kinds.map((a) => malformed(a)));
    await waitFor('warm-up connections to close', async () => (await gatewayConnections()) === 0, 10_000);
    global.gc?.();
    const baseline = { fds: fdCount(), heap: process.memoryUsage().heapUsed };

    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CONNECTIONS) {
          const i = next++;
          await malformed(kinds[i % kinds.length]!);
        }
      }),
    );
    const floodMs = Date.now() - started;

    // A normal client gets in, and the gateway let go of every bad connection.
    const client = pgClient(stack, t);
    await client.connect();
    expect((await client.query('select 41 + 1 as answer')).rows[0].answer).toBe(42);
    await client.end();
    await waitFor('the gateway to close every malformed connection', async () => (await gatewayConnections()) === 0, 10_000);
    const fds = await waitFor('fds to return to the baseline', async () => {
      const n = fdCount();
      return n <= baseline.fds + 5 ? n : false;
    }, 10_000);
    global.gc?.();
    const heapGrowth = process.memoryUsage().heapUsed - baseline.heap;
    const m = await metricsText(stack);
    const outcomes = ['protocol_error', 'client_gone', 'startup_timeout', 'auth_failed', 'internal_error'].map((o) => [o, sample(m, 'pgwake_gateway_connections_total', { outcome: o })]);
    console.log(`flood: ${CONNECTIONS} connections in ${floodMs} ms; fds ${baseline.fds} -> ${fds}; heap growth ${(heapGrowth / 1e6).toFixed(1)} MB (gc ${global.gc ? 'on' : 'off'}); outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
    // None of it was the gateway's own failure.
    const counted = Object.fromEntries(outcomes) as Record<string, number>;
    expect(counted.internal_error).toBe(0);
    // Every kind of refusal was reached (the metrics saw the flood), and the stalled ones were ended by the deadline.
    expect(counted.protocol_error).toBeGreaterThan(CONNECTIONS / 4);
    expect(counted.startup_timeout).toBeGreaterThan(0);
    // Memory as a loose bound: without --expose-gc the heap holds garbage not yet collected.
    expect(heapGrowth).toBeLessThan(global.gc ? 30e6 : 150e6);
  }, 150_000);
});
