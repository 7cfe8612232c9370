import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import type { BackendMessage, DatabaseError } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { constantTimeEqual, deriveScramKeys, hmac, xor, type ScramClientKeys } from '../../core/index.js';
import type { PgbenchTarget } from './pgbench.js';

/**
 * SCRAM client keys per (password, salt, iterations), derived once: the bench opens
 * thousands of connections with one password, and a PBKDF2 per connection would
 * measure the bench's own CPU rather than the gateway (a client-side pool caches too).
 */
export class ScramKeyCache {
  readonly #keys = new Map<string, ScramClientKeys>();

  get(password: string, salt: Buffer, iterations: number): ScramClientKeys {
    const key = `${password}\0${salt.toString('base64')}\0${iterations}`;
    let keys = this.#keys.get(key);
    if (!keys) this.#keys.set(key, (keys = deriveScramKeys(password, salt, iterations)));
    return keys;
  }
}

type Pending = { resolve: () => void; reject: (err: Error) => void };

/**
 * A lean Postgres connection (pg-protocol framing, SCRAM with cached keys, simple
 * queries only) for holding thousands of idle clients and timing first rows,
 * without a full client library's memory and CPU per connection.
 */
export class BenchConnection {
  readonly #socket: net.Socket;
  readonly #parser = new Parser();
  #pending: Pending | undefined;
  #queryError: Error | undefined;
  #closed: Error | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
  }

  /** Connects and logs in; resolves at the first ReadyForQuery. */
  static open(target: PgbenchTarget, keys: ScramKeyCache, timeoutMs = 30_000): Promise<BenchConnection> {
    const socket = net.connect(target.port, target.host);
    socket.setNoDelay(true);
    const conn = new BenchConnection(socket);
    const clientNonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=*,r=${clientNonce}`;
    let expectedServerSignature: Buffer | undefined;
    return new Promise<BenchConnection>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`login not done after ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      conn.#pending = {
        resolve: () => {
          clearTimeout(timer);
          resolve(conn);
        },
        reject: fail,
      };
      socket.once('connect', () => socket.write(serialize.startup({ user: target.user, database: target.database, application_name: 'pgwake-bench' })));
      conn.#onLogin = (msg) => {
        switch (msg.name) {
          case 'authenticationSASL':
            socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${clientFirstBare}`));
            return;
          case 'authenticationSASLContinue': {
            const serverFirst = (msg as unknown as { data: string }).data;
            const attrs = new Map(serverFirst.split(',').map((a) => [a.slice(0, 1), a.slice(2)] as const));
            const nonce = attrs.get('r') ?? '';
            if (!nonce.startsWith(clientNonce)) return fail(new Error('server sent a SCRAM nonce that does not extend ours'));
            const k = keys.get(target.password, Buffer.from(attrs.get('s') ?? '', 'base64'), Number(attrs.get('i')));
            const withoutProof = `c=biws,r=${nonce}`;
            const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
            expectedServerSignature = hmac(k.serverKey, authMessage);
            socket.write(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${xor(k.clientKey, hmac(k.storedKey, authMessage)).toString('base64')}`));
            return;
          }
          case 'authenticationSASLFinal': {
            const v = /(?:^|,)v=([A-Za-z0-9+/=]+)/.exec((msg as unknown as { data: string }).data);
            if (!v || !expectedServerSignature || !constantTimeEqual(Buffer.from(v[1]!, 'base64'), expectedServerSignature)) fail(new Error('wrong SCRAM server signature'));
            return;
          }
          case 'authenticationMD5Password':
          case 'authenticationCleartextPassword':
            return fail(new Error(`server asked for ${msg.name}, not SCRAM`));
        }
      };
      socket.on('data', (chunk: Buffer) => conn.#parser.parse(chunk, (m) => conn.#onMessage(m)));
      socket.on('error', (err) => conn.#end(err));
      socket.on('close', () => conn.#end(new Error('connection closed')));
    });
  }

  #onLogin: ((msg: BackendMessage) => void) | undefined;

  #onMessage(msg: BackendMessage): void {
    if (msg.name === 'readyForQuery') {
      this.#onLogin = undefined;
      const pending = this.#pending;
      const error = this.#queryError;
      this.#pending = undefined;
      this.#queryError = undefined;
      if (error) pending?.reject(error);
      else pending?.resolve();
      return;
    }
    if (msg.name === 'error') {
      const e = msg as unknown as DatabaseError;
      const err = Object.assign(new Error(`${e.code ?? ''} ${e.message}`.trim()), { code: e.code });
      if (this.#onLogin) {
        this.#pending?.reject(err);
        this.#pending = undefined;
      } else this.#queryError = err;
      return;
    }
    this.#onLogin?.(msg);
  }

  #end(err: Error): void {
    this.#closed ??= err;
    this.#pending?.reject(err);
    this.#pending = undefined;
  }

  /** One simple-protocol query; resolves at ReadyForQuery, rejects with the server's error. */
  query(sql: string): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#pending) return Promise.reject(new Error('a query is already running on this connection'));
    return new Promise<void>((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(serialize.query(sql));
    });
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  close(): Promise<void> {
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.end(serialize.end());
      setTimeout(() => this.#socket.destroy(), 2000).unref();
    });
  }
}

/** Connect, log in and read the first row of `sql`: ms from the first byte to ReadyForQuery. */
export async function connectToFirstRow(target: PgbenchTarget, keys: ScramKeyCache, sql = 'SELECT 1'): Promise<number> {
  const t0 = performance.now();
  const conn = await BenchConnection.open(target, keys);
  try {
    await conn.query(sql);
    return performance.now() - t0;
  } finally {
    await conn.close();
  }
}
