import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createScramVerifier, deriveScramKeys, hmac, loadConfig, xor } from '../../core/index.js';
import { AuthFailure, authenticateScram, parseClientFinal, parseClientFirst, SCRAM_SHA_256 } from '../../gateway/auth/scram.js';
import { ClientGone, GatewayError } from '../../gateway/errors.js';
import { parseStartupParameters, readHandshake } from '../../gateway/handshake.js';
import { loadTls, type TlsSetup } from '../../gateway/tls.js';
import { MessageFramer } from '../../gateway/wire/framer.js';
import { PacketReader } from '../../gateway/wire/packet-reader.js';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS, int32, loopbackPairs, mutate, scriptedSocket, splitAt, startupBytes, typed, type Mutation } from './fuzz-support.js';

/**
 * Property tests on the gateway's parsers of client bytes: whatever arrives, they
 * answer with the typed protocol error (GatewayError, 08P01 and friends) or notice
 * the client left (ClientGone) — never a TypeError, RangeError or a hang — and what
 * is valid comes back out as it went in. PGWAKE_FUZZ_RUNS=<n> runs longer.
 */
const params = { numRuns: FUZZ_RUNS, endOnFailure: process.env.PGWAKE_FUZZ_SHRINK !== "1" };
const isTyped = (err: unknown) => err instanceof GatewayError || err instanceof ClientGone;

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});
const bytes = (maxLength = 300) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 6 });
/** Startup parameter names and values: no NUL, names non-empty and unique. */
const paramName = fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' }).filter((s) => !s.includes('\0'));
const paramValue = fc.string({ maxLength: 40, unit: 'grapheme' }).filter((s) => !s.includes('\0'));
const startupParams = fc.uniqueArray(fc.tuple(paramName, paramValue), { selector: ([k]) => k, maxLength: 6 });
/** A message of the kinds the handshake and SASL expect, to be mutated. */
const SSL = Buffer.concat([int32(8), int32(80877103)]);
const GSS = Buffer.concat([int32(8), int32(80877104)]);
const CANCEL = Buffer.concat([int32(16), int32(80877102), int32(1234), int32(5678)]);

/** Settles `p` within `ms`, or says it hung: a parser must not wait forever on bytes that ended. */
async function settled<T>(p: Promise<T>, ms = 2_000): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung for ${ms} ms`)), ms)));
  try {
    return { ok: true, value: await Promise.race([p, hung]) };
  } catch (err) {
    return { ok: false, err };
  } finally {
    clearTimeout(timer);
  }
}

let tlsDir: string;
let tlsSetup: TlsSetup;
beforeAll(async () => {
  tlsDir = await mkdtemp(path.join(tmpdir(), 'pgwake-fuzz-'));
  const config = loadConfig({ PGWAKE_DATA_DIR: tlsDir, PGWAKE_LOG_LEVEL: 'silent' });
  tlsSetup = await loadTls(config, createLogger('silent', 'fuzz'));
});
afterAll(async () => {
  await rm(tlsDir, { recursive: true, force: true });
});

describe('startup, SSL and cancel packets', () => {
  it('parseStartupParameters: any bytes give parameters or 08P01', () => {
    fc.assert(
      fc.property(bytes(), (body) => {
        try {
          parseStartupParameters(body);
        } catch (err) {
          expect(err).toBeInstanceOf(GatewayError);
          expect((err as GatewayError).sqlstate).toBe('08P01');
        }
      }),
      params,
    );
  });

  it('a StartupMessage, cut anywhere, round-trips through the handshake', async () => {
    await fc.assert(
      fc.asyncProperty(startupParams, cuts, async (p, at) => {
        const { socket } = scriptedSocket(splitAt(startupBytes(p), at), { end: false });
        const r = await settled(readHandshake(socket, tlsSetup, () => undefined));
        expect(r.ok).toBe(true);
        if (!r.ok || r.value.kind !== 'startup') throw new Error('expected a startup');
        expect([...r.value.params]).toEqual(p.filter(([k]) => !k.startsWith('_pq_.')));
        socket.destroy();
      }),
      params,
    );
  }, FUZZ_TIMEOUT_MS);

  it('a CancelRequest round-trips', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), fc.integer(), cuts, async (pid, key, at) => {
        const packet = Buffer.concat([int32(16), int32(80877102), int32(pid), int32(key)]);
        const { socket } = scriptedSocket(splitAt(packet, at));
        const r = await settled(readHandshake(socket, tlsSetup, () => undefined));
        if (!r.ok || r.value.kind !== 'cancel') throw new Error(`expected a cancel request, got ${r.ok ? r.value.kind : String(r.err)}`);
        expect(r.value.processId).toBe(pid | 0);
        expect(r.value.secretKey.readInt32BE(0)).toBe(key | 0);
      }),
      params,
    );
  }, FUZZ_TIMEOUT_MS);

  // Found by the property below (seed 1132954996): a failed TLS handshake after SSLRequest was a plain
  // Error, so the gateway counted the client's garbage as its own internal_error and logged it as one.
  it('regression: SSLRequest then a bad or missing TLS handshake is a typed protocol error', async () => {
    const pairs = await loopbackPairs();
    try {
      for (const after of [[Buffer.from([74, 3, 1])], [], [Buffer.from([0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0])], [Buffer.from('GET / HTTP/1.1\r\n\r\n')]]) {
        const socket = await pairs.pair([SSL, ...after]);
        const r = await settled(readHandshake(socket, tlsSetup, () => undefined));
        socket.destroy();
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.err).toBeInstanceOf(GatewayError);
          expect((r.err as GatewayError).outcome).toBe('protocol_error');
        }
      }
    } finally {
      await pairs.close();
    }
  });

  it('random and mutated handshakes end in a typed error or a valid request, never a crash or a hang', async () => {
    const seed = fc.oneof(
      startupParams.map((p) => startupBytes(p)),
      fc.constantFrom(SSL, GSS, CANCEL, Buffer.concat([SSL, Buffer.from([0x16, 3, 1, 0, 1, 1])]), Buffer.concat([GSS, startupBytes([['user', 'u']])]), Buffer.concat([SSL, Buffer.from([0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0])])),
    );
    const input = fc.oneof(bytes(), fc.tuple(seed, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([b, m]) => mutate(b, m)));
    const pairs = await loopbackPairs();
    try {
      await fc.assert(
        fc.asyncProperty(input, cuts, async (b, at) => {
          const socket = await pairs.pair(splitAt(b, at));
          socket.on('error', () => undefined);
          const r = await settled(readHandshake(socket, tlsSetup, () => undefined));
          socket.destroy();
          if (!r.ok && !isTyped(r.err)) throw r.err;
        }),
        params,
      );
    } finally {
      await pairs.close();
    }
  }, FUZZ_TIMEOUT_MS);
});

describe('message framing', () => {
  const message = fc.tuple(fc.integer({ min: 0x20, max: 0x7e }), bytes(200)).map(([t, body]) => ({ type: t, raw: typed(t, body) }));

  it('PacketReader.readMessage: a sequence of messages, cut anywhere, comes back whole and in order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), cuts, async (msgs, at) => {
        const { socket } = scriptedSocket(splitAt(Buffer.concat(msgs.map((m) => m.raw)), at));
        const reader = new PacketReader(socket, () => new ClientGone());
        for (const m of msgs) {
          const got = await reader.readMessage(1_000);
          expect(got.type).toBe(m.type);
          expect(got.raw.equals(m.raw)).toBe(true);
        }
      }),
      params,
    );
  }, FUZZ_TIMEOUT_MS);

  it('PacketReader: any bytes give messages, then a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(), cuts, fc.boolean(), async (b, at, startupFirst) => {
        const { socket } = scriptedSocket(splitAt(b, at));
        const reader = new PacketReader(socket, () => new ClientGone());
        const read = async () => {
          if (startupFirst) await reader.readStartupPacket();
          for (;;) await reader.readMessage(100);
        };
        const r = await settled(read());
        expect(r.ok).toBe(false);
        if (!r.ok && !isTyped(r.err)) throw r.err;
      }),
      params,
    );
  }, FUZZ_TIMEOUT_MS);

  /** Collects what a framer hands out: whole messages, and streamed ones joined. */
  function framed(chunks: Buffer[], streamTypes: Set<number>): Buffer[] {
    const out: Buffer[] = [];
    let streaming: Buffer[] | null = null;
    let streamTotal = 0;
    const closeStream = () => {
      if (streaming && Buffer.concat(streaming).length === streamTotal) {
        out.push(Buffer.concat(streaming));
        streaming = null;
      }
    };
    const framer = new MessageFramer(
      {
        message(_type, buf, start, end) {
          out.push(Buffer.from(buf.subarray(start, end)));
          return true;
        },
        streamStart(_type, total) {
          streaming = [];
          streamTotal = total;
          return true;
        },
        streamBytes(buf, start, end) {
          streaming!.push(Buffer.from(buf.subarray(start, end)));
          closeStream();
        },
      },
      (type) => !streamTypes.has(type),
    );
    for (const c of chunks) expect(framer.push(c)).toBeNull();
    expect(framer.atBoundary).toBe(true);
    return out;
  }

  it('MessageFramer: messages cut anywhere come out the same, whole or streamed', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), cuts, fc.uniqueArray(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: 20 }), (msgs, at, streamed) => {
        const out = framed(splitAt(Buffer.concat(msgs.map((m) => m.raw)), at), new Set(streamed));
        expect(out.map((b) => b.toString('hex'))).toEqual(msgs.map((m) => m.raw.toString('hex')));
      }),
      params,
    );
  });

  it('MessageFramer: any bytes give messages or 08P01, never another exception', () => {
    fc.assert(
      fc.property(bytes(), cuts, fc.boolean(), (b, at, whole) => {
        const framer = new MessageFramer({ message: () => true, streamStart: () => true, streamBytes: () => undefined }, () => whole);
        try {
          for (const c of splitAt(b, at)) framer.push(c);
        } catch (err) {
          expect(err).toBeInstanceOf(GatewayError);
          expect((err as GatewayError).sqlstate).toBe('08P01');
        }
      }),
      params,
    );
  });
});

describe('SASL (SCRAM-SHA-256)', () => {
  const printable = fc.string({ minLength: 1, maxLength: 30, unit: fc.integer({ min: 0x21, max: 0x7e }).filter((c) => c !== 0x2c).map((c) => String.fromCharCode(c)) });

  it('parseClientFirst / parseClientFinal: any text gives a parse or 08P01', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200, unit: 'binary' }),
      fc.tuple(printable, fc.array(mutationArb, { maxLength: 3 })).map(([n, m]) => mutate(Buffer.from(`n,,n=,r=${n}`), m).toString('utf8')),
      fc.tuple(printable, fc.array(mutationArb, { maxLength: 3 })).map(([n, m]) => mutate(Buffer.from(`c=biws,r=${n},p=${Buffer.alloc(32, 7).toString('base64')}`), m).toString('utf8')),
    );
    fc.assert(
      fc.property(text, fc.boolean(), fc.boolean(), (s, plus, binding) => {
        for (const parse of [() => parseClientFirst(s, plus ? 'SCRAM-SHA-256-PLUS' : SCRAM_SHA_256, binding), () => parseClientFinal(s)]) {
          try {
            parse();
          } catch (err) {
            expect(err).toBeInstanceOf(GatewayError);
            expect((err as GatewayError).sqlstate).toBe('08P01');
          }
        }
      }),
      params,
    );
  });

  it('valid client-first and client-final round-trip', () => {
    fc.assert(
      fc.property(printable, printable, fc.uint8Array({ minLength: 32, maxLength: 32 }), (clientNonce, serverPart, proof) => {
        const first = parseClientFirst(`n,,n=,r=${clientNonce}`, SCRAM_SHA_256, false);
        expect(first).toEqual({ gs2Header: 'n,,', bare: `n=,r=${clientNonce}`, clientNonce });
        const withoutProof = `c=biws,r=${clientNonce}${serverPart}`;
        const final = parseClientFinal(`${withoutProof},p=${Buffer.from(proof).toString('base64')}`);
        expect(final).toMatchObject({ channelBinding: 'biws', nonce: `${clientNonce}${serverPart}`, withoutProof });
        expect(final.proof.equals(Buffer.from(proof))).toBe(true);
      }),
      params,
    );
  });

  const password = 'fuzz-password';
  const verifier = createScramVerifier(password, 32);

  /** The exchange over a scripted socket; `answer` says what the client sends after server-first. */
  function exchange(initial: Buffer[], answer: (serverFirst: string) => Buffer[], giveUpIfUnanswered = true) {
    const { socket, written } = scriptedSocket(initial, { end: false });
    let answered = false;
    // A client whose first message never completes goes away (in the gateway, the startup deadline ends it).
    const giveUp = giveUpIfUnanswered ? setTimeout(() => answered || socket.push(null), 15) : undefined;
    const origWrite = socket.write.bind(socket);
    socket.write = ((data: Buffer, ...rest: never[]) => {
      const r = origWrite(data, ...rest);
      // AuthenticationSASLContinue: 'R', length, Int32 11, server-first.
      if (data[0] === 0x52 && data.length > 9 && data.readInt32BE(5) === 11) {
        answered = true;
        clearTimeout(giveUp);
        const chunks = answer(data.subarray(9).toString('utf8'));
        setImmediate(() => {
          for (const c of chunks) socket.push(c);
          socket.push(null);
        });
      }
      return r;
    }) as typeof socket.write;
    const reader = new PacketReader(socket, () => new ClientGone());
    return { written, run: () => authenticateScram({ socket, reader, user: 'u', verifier, mockSalt: Buffer.alloc(16), channelBinding: null }) };
  }
  const initialResponse = (clientFirst: string, mechanism = SCRAM_SHA_256) => typed(0x70, Buffer.concat([Buffer.from(`${mechanism}\0`), int32(Buffer.byteLength(clientFirst)), Buffer.from(clientFirst)]));

  function clientFinal(clientFirstBare: string, serverFirst: string): string {
    const nonce = /r=([^,]+)/.exec(serverFirst)![1]!;
    const withoutProof = `c=biws,r=${nonce}`;
    const keys = deriveScramKeys(password, verifier.salt, verifier.iterations);
    const proof = xor(keys.clientKey, hmac(keys.storedKey, `${clientFirstBare},${serverFirst},${withoutProof}`));
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  it('a valid exchange, cut anywhere, succeeds', async () => {
    await fc.assert(
      fc.asyncProperty(printable, cuts, cuts, async (nonce, at1, at2) => {
        const bare = `n=,r=${nonce}`;
        const x = exchange(splitAt(initialResponse(`n,,${bare}`), at1), (sf) => splitAt(typed(0x70, Buffer.from(clientFinal(bare, sf))), at2), false);
        const r = await settled(x.run());
        if (!r.ok) throw r.err;
      }),
      { numRuns: Math.min(FUZZ_RUNS, 100) },
    );
  }, FUZZ_TIMEOUT_MS);

  it('random and mutated SASL messages end in AuthFailure (08P01/28P01) or ClientGone', async () => {
    const initial = fc.oneof(
      bytes(),
      fc.tuple(printable, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([n, m]) => mutate(initialResponse(`n,,n=,r=${n}`), m)),
    );
    const final = fc.oneof(bytes(), fc.array(mutationArb, { minLength: 1, maxLength: 4 }));
    await fc.assert(
      fc.asyncProperty(initial, final, cuts, async (first, second, at) => {
        const x = exchange(splitAt(first, at), (sf) => {
          if (Buffer.isBuffer(second)) return [second];
          const nonce = /r=([^,]+)/.exec(sf)![1]!;
          return [mutate(typed(0x70, Buffer.from(`c=biws,r=${nonce},p=${Buffer.alloc(32).toString('base64')}`)), second)];
        });
        const r = await settled(x.run());
        expect(r.ok).toBe(false);
        if (r.ok) return;
        if (!(r.err instanceof AuthFailure || r.err instanceof ClientGone)) throw r.err;
        if (r.err instanceof AuthFailure) expect(['08P01', '28P01']).toContain(r.err.sqlstate);
      }),
      params,
    );
  }, FUZZ_TIMEOUT_MS);
});
