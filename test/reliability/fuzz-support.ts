import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** Property runs per fuzz property: a few hundred in CI (seconds), more on demand (`PGWAKE_FUZZ_RUNS=100000`). */
export const FUZZ_RUNS = Number(process.env.PGWAKE_FUZZ_RUNS ?? 400);
/** Per-test timeout that grows with the runs asked for. */
export const FUZZ_TIMEOUT_MS = Math.max(30_000, FUZZ_RUNS * 50);

/**
 * A client socket made of bytes: `chunks` arrive one by one (as TCP may split them),
 * then the peer ends its side. What the code under test writes is kept in `written`.
 */
export function scriptedSocket(chunks: Buffer[], opts: { end?: boolean } = {}): { socket: Socket; written: Buffer[] } {
  const written: Buffer[] = [];
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  let i = 0;
  const feed = () => {
    if (i < chunks.length) {
      duplex.push(chunks[i++]);
      setImmediate(feed);
    } else if (opts.end !== false) {
      duplex.push(null);
    }
  };
  setImmediate(feed);
  return { socket: duplex as unknown as Socket, written };
}

/** Cuts `buf` at the given offsets (taken modulo its length), as a network might. */
export function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  if (buf.length === 0) return [buf];
  const points = [...new Set(cuts.map((c) => c % buf.length))].filter((c) => c > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

export const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
};

/** A typed protocol message: type byte, Int32 length, body. */
export const typed = (type: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([type]), int32(body.length + 4), body]);

/** A StartupMessage for protocol 3.0 with the given parameters. */
export function startupBytes(params: [string, string][], code = 196608): Buffer {
  const body = Buffer.concat([int32(code), ...params.map(([k, v]) => Buffer.from(`${k}\0${v}\0`, 'utf8')), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

/** Mutations of a valid input: flip, overwrite, insert, delete and truncate, at positions given by the fuzzer. */
export type Mutation = { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number };

export function mutate(buf: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(buf);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % out.length;
    if (m.kind === 'flip' && out.length > 0) out[at] = out[at]! ^ (1 << (m.byte % 8));
    else if (m.kind === 'set' && out.length > 0) out[at] = m.byte;
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    else if (m.kind === 'delete' && out.length > 0) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else if (m.kind === 'truncate') out = out.subarray(0, at);
  }
  return out;
}

/**
 * Real loopback TCP pairs (TLS needs a real socket to notice its peer left): `pair(chunks)`
 * gives the server side, with the client sending `chunks` one by one and then ending.
 */
export async function loopbackPairs(): Promise<{ pair(chunks: Buffer[]): Promise<Socket>; close(): Promise<void> }> {
  const net = await import('node:net');
  const waiting: ((s: Socket) => void)[] = [];
  const clients = new Set<Socket>();
  const server = net.createServer((s) => waiting.shift()?.(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    pair(chunks) {
      const accepted = new Promise<Socket>((r) => waiting.push(r));
      const client = net.connect(port, '127.0.0.1');
      clients.add(client);
      client.on('error', () => undefined);
      client.on('data', () => undefined); // the gateway's 'S'/'N' and TLS bytes
      client.once('close', () => clients.delete(client));
      client.once('connect', async () => {
        for (const c of chunks) {
          if (client.destroyed) return;
          client.write(c);
          await new Promise((r) => setImmediate(r));
        }
        client.end();
      });
      return accepted;
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
