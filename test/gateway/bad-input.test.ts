import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestStack } from '../support/stack.js';
import { createTenantDb, errorsIn, metricsText, pgClient, rawExchange, run, dsn, sample, startGatewayStack, startupPacket, waitFor, type TenantDb } from './support.js';

/** Every kind of bad input gets a clear error and a closed socket; the gateway keeps serving. */
const STARTUP_TIMEOUT_MS = 1_000;
let stack: TestStack;
let t: TenantDb;
let port: number;

beforeAll(async () => {
  stack = await startGatewayStack({ PGWAKE_STARTUP_TIMEOUT_MS: String(STARTUP_TIMEOUT_MS) });
  t = await createTenantDb(stack);
  port = stack.gateway!.port;
});

afterAll(async () => {
  await stack?.destroy();
});

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const SSL_REQUEST = Buffer.concat([int32(8), int32(80877103)]);
const GSSENC_REQUEST = Buffer.concat([int32(8), int32(80877104)]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function refusal(send: Parameters<typeof rawExchange>[1], timeoutMs = 5_000) {
  const { data, closed } = await rawExchange(port, send, timeoutMs);
  const errors = errorsIn(data);
  return { closed, error: errors[0], data };
}

describe('garbage and malformed packets', () => {
  it('garbage bytes and an HTTP request: 08P01 invalid length of startup packet', async () => {
    for (const junk of ['hello, this is not postgres\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03']) {
      const r = await refusal((s) => void s.write(junk));
      expect(r.closed).toBe(true);
      expect(r.error).toMatchObject({ S: 'FATAL', C: '08P01', M: 'invalid length of startup packet' });
    }
  });

  it('an oversize startup packet is refused before its bytes arrive', async () => {
    const r = await refusal((s) => void s.write(Buffer.concat([int32(20_000), int32(196608)])));
    expect(r.closed).toBe(true);
    expect(r.error).toMatchObject({ C: '08P01', M: 'invalid length of startup packet' });
  });

  it('an oversize SASL message is refused', async () => {
    const r = await refusal((s) => void s.write(Buffer.concat([startupPacket({ user: t.tenant.pg_user, database: 'app' }), Buffer.from([0x70]), int32(1_000_000), Buffer.alloc(1000)])));
    expect(r.closed).toBe(true);
    expect(r.error).toMatchObject({ C: '08P01', M: 'message too long' });
  });

  it('a malformed startup packet, a missing user, and the wrong message during SASL', async () => {
    const noTerminator = Buffer.concat([int32(8 + 10), int32(196608), Buffer.from('user\0bob\0x\0')]);
    expect((await refusal((s) => void s.write(noTerminator))).error).toMatchObject({ C: '08P01' });
    expect((await refusal((s) => void s.write(startupPacket({ database: 'app' })))).error).toMatchObject({ C: '28000', M: 'no PostgreSQL user name specified in startup packet' });
    const query = Buffer.concat([Buffer.from('Q'), int32(4 + 9), Buffer.from('select 1\0')]);
    const r = await refusal((s) => void s.write(Buffer.concat([startupPacket({ user: t.tenant.pg_user }), query])));
    expect(r.error).toMatchObject({ C: '08P01', M: 'expected SASL response, got message type "Q"' });
  });

  it('wrong protocol versions: 2.0 and 4.0 refused, 3.2 negotiated down to 3.0', async () => {
    for (const version of [0x00020000, 0x00040000, 1234]) {
      const r = await refusal((s) => void s.write(startupPacket({ user: 'x' }, version)));
      expect(r.closed).toBe(true);
      expect(r.error?.C).toBe('0A000');
      expect(r.error?.M).toMatch(/^unsupported frontend protocol \d+\.\d+: server supports 3\.0 to 3\.0$/);
    }
    const { data } = await rawExchange(port, (s) => void s.write(startupPacket({ user: t.tenant.pg_user, '_pq_.something': 'on' }, 0x00030002)), 300);
    expect(String.fromCharCode(data[0]!)).toBe('v'); // NegotiateProtocolVersion
    expect(data.readInt32BE(5)).toBe(0x00030000);
    expect(data.readInt32BE(9)).toBe(1);
    expect(data.toString('utf8', 13, 13 + '_pq_.something'.length)).toBe('_pq_.something');
    const next = 1 + data.readInt32BE(1);
    expect(String.fromCharCode(data[next]!)).toBe('R'); // then authentication goes on as usual
  });

  it('plaintext bytes sent after SSLRequest (before TLS) are refused; a broken TLS handshake just closes', async () => {
    const stuffed = await refusal((s) => void s.write(Buffer.concat([SSL_REQUEST, startupPacket({ user: t.tenant.pg_user })])));
    expect(stuffed.data[0]).toBe(0x53); // 'S'
    expect(errorsIn(stuffed.data.subarray(1))[0]).toMatchObject({ C: '08P01', M: 'received unencrypted data after SSL request' });
    const broken = await rawExchange(port, async (s) => {
      s.write(SSL_REQUEST);
      await sleep(100);
      s.write('this is not a TLS ClientHello at all');
    });
    expect(broken.closed).toBe(true);
    expect(broken.data.subarray(0, 1).toString()).toBe('S');
  });

  it('GSSENCRequest is answered N and the startup goes on', async () => {
    const { data } = await rawExchange(port, async (s) => {
      s.write(GSSENC_REQUEST);
      await sleep(50);
      s.write(startupPacket({ user: t.tenant.pg_user, database: 'app' }));
    }, 300);
    expect(data.subarray(0, 1).toString()).toBe('N');
    expect(data[1]).toBe(0x52);
    expect(data.readInt32BE(6)).toBe(10); // AuthenticationSASL
  });

  it('a CancelRequest with an unknown key is closed without an answer', async () => {
    const r = await rawExchange(port, (s) => void s.write(Buffer.concat([int32(16), int32(80877102), int32(12345), int32(67890)])));
    expect(r.closed).toBe(true);
    expect(r.data).toHaveLength(0);
  });
});

describe('slow and truncated clients', () => {
  it('silent, truncated and slowloris clients are closed at the startup timeout with an error', async () => {
    const started = Date.now();
    const [silent, truncated, slowloris, midSasl] = await Promise.all([
      refusal(() => undefined),
      refusal((s) => void s.write(Buffer.concat([int32(50), int32(196608), Buffer.from('user\0')]))),
      refusal(async (s) => {
        // One byte at a time, each well inside any per-read timeout; the whole startup is what is bounded.
        const packet = startupPacket({ user: t.tenant.pg_user, database: 'app', application_name: 'x'.repeat(200) });
        for (const byte of packet) {
          if (s.destroyed) return;
          s.write(Buffer.from([byte]));
          await sleep(20);
        }
      }),
      refusal((s) => void s.write(startupPacket({ user: t.tenant.pg_user, database: 'app' }))),
    ]);
    for (const r of [silent, truncated, slowloris, midSasl]) {
      expect(r.closed).toBe(true);
      expect(r.error).toMatchObject({ C: '08P01', M: `startup not finished within ${STARTUP_TIMEOUT_MS} ms` });
    }
    expect(Date.now() - started).toBeLessThan(STARTUP_TIMEOUT_MS + 3_000);
  });

  it('a client that leaves mid-packet is cleaned up', async () => {
    const r = await rawExchange(port, (s) => void s.end(Buffer.concat([int32(50), int32(196608)])), 2_000);
    expect(r.closed).toBe(true);
  });
});

describe('after all that', () => {
  it('survives a burst of bad connections, then a real client gets in and nothing is left open', async () => {
    await Promise.all(Array.from({ length: 100 }, (_, i) => rawExchange(port, (s) => void s.write(i % 2 ? 'garbage!' : Buffer.concat([int32(9_999_999)])), 3_000)));
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t, { sslmode: 'require' }), '-Atc', 'select 1']);
    expect(stdout.trim()).toBe('1');
    const client = pgClient(stack, t);
    await client.connect();
    expect((await client.query('select 2 as n')).rows[0]).toEqual({ n: 2 });
    await client.end();
    await waitFor('no open connections', async () => sample(await metricsText(stack), 'pgwake_gateway_connections') === 0);
    const text = await metricsText(stack);
    expect(sample(text, 'pgwake_gateway_connections_total', { outcome: 'protocol_error' })).toBeGreaterThanOrEqual(100);
    expect(sample(text, 'pgwake_gateway_connections_total', { outcome: 'startup_timeout' })).toBeGreaterThanOrEqual(4);
  });
});
