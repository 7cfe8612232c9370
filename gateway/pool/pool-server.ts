import type { Socket } from 'node:net';
import type { Route } from '../../core/index.js';
import type { RelayedBytes } from '../metrics.js';
import { trackComputeBytes } from '../relay.js';
import type { ServerConnection } from '../server-connection.js';
import { CLOSE_COMPLETE, PARSE_COMPLETE } from '../wire/backend-messages.js';
import { Forwarder } from '../wire/forwarder.js';
import { MessageFramer, type FrameSink } from '../wire/framer.js';
import type { SocketReads } from '../wire/socket-reads.js';
import { ServerStatements } from './prepared-statements.js';
import { ACTION, REQ, RequestQueue } from './request-queue.js';
import { ServerParams } from './startup-params.js';

/** The client a server connection is linked to while it serves that client's requests. */
export interface ServerClient {
  readonly socket: Socket;
  /** A ReadyForQuery, before it is written to the client. `idle`: nothing more is owed and no transaction is open. */
  readyForQuery(status: number, idle: boolean): void;
  /** The client changed a reported parameter itself (SET application_name, …). */
  parameterChanged(name: string, value: string): void;
  /** The server connection closed under the client. */
  serverLost(): void;
}

/** Rows of a query the gateway ran itself, as text; `error` is the message of the first error, if any. */
export interface QueryResult {
  rows: (string | null)[][];
  error: string | null;
}

const T_READY = 0x5a; // Z
const T_ERROR = 0x45; // E
const T_PARAM = 0x53; // S
const T_COMPLETE = 0x43; // C
const T_ROW = 0x44; // D
const T_ROWDESC = 0x54; // T
const T_NODATA = 0x6e; // n
const T_EMPTY = 0x49; // I
const T_SUSPENDED = 0x73; // s
const T_COPYIN = 0x47; // G
export const STATUS_IDLE = 0x49; // 'I'

/** Reported parameters a client may change with SET, which then travel with it. */
const FOLLOWED_PARAMS = new Set(['application_name', 'client_encoding', 'datestyle', 'intervalstyle', 'timezone', 'standard_conforming_strings', 'search_path', 'default_transaction_read_only']);

/**
 * One logged-in connection to a compute under the pool's control. It reads every
 * message the compute sends (headers, and the few bodies it acts on), matches
 * each answer to the request it answers, and passes the client's answers on in
 * byte ranges. In transaction mode it serves one client per transaction; in
 * session mode one client for its whole session.
 */
export class PoolServer implements FrameSink {
  readonly queue = new RequestQueue();
  readonly statements = new ServerStatements();
  readonly params = new ServerParams();
  /** Client → server bytes (and the gateway's own requests), joined into few writes. */
  readonly toServer: Forwarder;
  readonly socket: Socket;
  readonly route: Route;
  /** Transaction status of the last ReadyForQuery. */
  status = STATUS_IDLE;
  copyIn = false;
  /** A client may have left session state (SET, LISTEN, temp tables …): reset before the next client. */
  dirty = false;
  /** Not to be used again (a cached plan changed type, statements out of step, a failed reset): closed on release. */
  doomed = false;
  /** A DISCARD ALL or DEALLOCATE ALL is on its way: its CommandComplete empties `statements`. */
  watchDiscard = false;
  /** A cancel sent for this connection's backend that has not finished: nobody else may use it until it has. */
  cancelling: Promise<void> | null = null;
  idleSince = Date.now();
  readonly opened = Date.now();
  closed = false;

  #client: ServerClient | null = null;
  #out = new Forwarder(null);
  /** What a client let go by `handOver` is still owed (its last ReadyForQuery), until `flushHandedOver`. */
  #handedOver = new Forwarder(null);
  #framer: MessageFramer;
  #collecting: { rows: (string | null)[][]; error: string | null; done: (r: QueryResult) => void; fail: (e: Error) => void }[] = [];
  #drainWait = false;
  #reads: SocketReads;
  #onGone: (server: PoolServer) => void;
  #untrack: () => void;

  constructor(readonly conn: ServerConnection, bytes: RelayedBytes, onGone: (server: PoolServer) => void) {
    this.socket = conn.socket;
    this.route = conn.route;
    this.#onGone = onGone;
    this.toServer = new Forwarder(conn.socket);
    this.#framer = new MessageFramer(this, (type) => this.#collecting.length > 0 || type === T_READY || type === T_ERROR || type === T_PARAM || type === T_COMPLETE);
    for (const m of conn.startupMessages) if (m[0] === T_PARAM) this.#noteReported(m, 0, m.length);
    this.#untrack = trackComputeBytes(this.socket, bytes, conn.readAhead.length);
    this.#reads = conn.reads;
    this.#reads.readWith(this.#onData);
    this.socket.once('close', () => this.#gone());
    this.socket.on('error', () => undefined);
    this.socket.setNoDelay(true);
    if (conn.readAhead.length > 0) this.#onData(conn.readAhead);
    this.socket.resume();
  }

  get client(): ServerClient | null {
    return this.#client;
  }

  /** Nothing owed, no transaction open, no COPY: the connection can change hands. */
  get idle(): boolean {
    return this.queue.empty && this.status === STATUS_IDLE && !this.copyIn;
  }

  link(client: ServerClient): void {
    this.#client = client;
    this.#out.target = client.socket;
  }

  /** Lets go of the client, writing what it is still owed now. */
  unlink(): void {
    this.handOver();
    this.flushHandedOver();
  }

  /**
   * Lets go of the client, but keeps what it is still owed (its last ReadyForQuery)
   * unwritten until `flushHandedOver`: the pool hands the connection on in
   * between, so the next client's request reaches the compute before the write to this
   * client, not after it. The compute is what the queue waits for. The connection is free
   * before the client can see its ReadyForQuery all the same.
   */
  handOver(): void {
    const owed = this.#out;
    this.#out = this.#handedOver;
    this.#handedOver = owed;
    this.#client = null;
    if (this.#drainWait) {
      this.#drainWait = false;
      this.socket.resume();
    }
  }

  /** Writes what the client let go by `handOver` was owed. */
  flushHandedOver(): void {
    const owed = this.#handedOver;
    owed.flush();
    owed.target = null;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Runs SQL of the gateway's own on an unlinked connection and collects its rows. */
  query(sql: string): Promise<QueryResult> {
    return new Promise((done, fail) => {
      if (this.closed) return fail(new Error('server connection closed'));
      this.#collecting.push({ rows: [], error: null, done, fail });
      this.queue.push(REQ.query, ACTION.collect);
      this.toServer.write(queryMessage(sql));
      this.toServer.flush();
    });
  }

  /** Sends Parse messages of the gateway's own (a session's statements after a move), then a Sync; resolves with the first error. */
  prepare(parses: Buffer[]): Promise<QueryResult> {
    return new Promise((done, fail) => {
      if (this.closed) return fail(new Error('server connection closed'));
      for (const p of parses) {
        this.queue.push(REQ.parse, ACTION.drop);
        this.toServer.write(p);
      }
      this.#collecting.push({ rows: [], error: null, done, fail });
      this.queue.push(REQ.sync, ACTION.collect);
      this.toServer.write(SYNC);
      this.toServer.flush();
    });
  }

  /** From the client's side: answers what is due now and sends it (the server's side flushes after each chunk). */
  answerFakes(): void {
    this.emitFakes();
    this.#out.flush();
  }

  /** Answers the fake requests now at the head of the queue (their place in the pipeline has come). */
  emitFakes(): void {
    const q = this.queue;
    while (q.headAction === ACTION.fake) {
      const kind = q.headKind;
      q.shift();
      this.#out.write(kind === REQ.parse ? PARSE_COMPLETE : CLOSE_COMPLETE);
    }
  }

  /** A chunk of the compute's bytes, in the socket's reused read buffer: flushed (or copied) before this returns. */
  #onData = (chunk: Buffer): void => {
    try {
      this.#framer.push(chunk);
      this.#out.flush();
    } catch {
      // The compute spoke garbage: nothing it says can be trusted any more.
      this.doomed = true;
      this.socket.destroy();
    }
    // A write that did not finish at once (to this client, or to the one it served before) still points into the read buffer.
    if (this.#out.wrotePending || this.#handedOver.wrotePending) {
      this.#out.wrotePending = false;
      this.#handedOver.wrotePending = false;
      this.#reads.retain();
    }
    const now = this.#out.target;
    if (now && now.writableNeedDrain && !this.#drainWait) {
      this.#drainWait = true;
      this.socket.pause();
      now.once('drain', () => {
        if (!this.#drainWait) return;
        this.#drainWait = false;
        this.socket.resume();
      });
    }
  };

  message(type: number, buf: Buffer, s: number, e: number): boolean {
    const q = this.queue;
    const action = q.headAction;
    if (action === ACTION.collect) {
      this.#collect(type, buf, s, e);
      return true;
    }
    if (action === ACTION.drop && q.headKind === REQ.query) {
      // The gateway's own SET of the client's parameters: swallowed whole.
      if (type === T_READY) {
        this.status = buf[s + 5]!;
        q.shift();
        this.emitFakes();
      } else if (type === T_PARAM) {
        this.#noteReported(buf, s, e);
      }
      return true;
    }
    switch (type) {
      case T_READY:
        this.#ready(buf, s, e);
        return true;
      case 0x31: // ParseComplete
      case 0x33: {
        // CloseComplete
        const kind = type === 0x31 ? REQ.parse : REQ.close;
        let drop = false;
        if (q.headKind === kind) {
          drop = action === ACTION.drop;
          const name = q.headName;
          if (name !== undefined && kind === REQ.parse) this.statements.confirm(name);
          q.shift();
        }
        if (!drop) this.#out.pass(buf, s, e);
        this.emitFakes();
        return true;
      }
      case 0x32: // BindComplete
        if (q.headKind === REQ.bind) q.shift();
        this.#out.pass(buf, s, e);
        this.emitFakes();
        return true;
      case T_ROWDESC:
      case T_NODATA:
        this.#out.pass(buf, s, e);
        if (q.headKind === REQ.describe) {
          q.shift();
          this.emitFakes();
        }
        return true;
      case T_COMPLETE:
      case T_EMPTY:
      case T_SUSPENDED:
        if (type === T_COMPLETE && this.watchDiscard) this.#noteTag(buf, s, e);
        this.#out.pass(buf, s, e);
        if (q.headKind === REQ.execute) {
          q.shift();
          this.emitFakes();
        }
        return true;
      case T_ERROR:
        this.#error(buf, s, e);
        return true;
      case T_PARAM:
        this.#parameterStatus(buf, s, e);
        this.#out.pass(buf, s, e);
        return true;
      case T_COPYIN:
        this.copyIn = true;
        this.#out.pass(buf, s, e);
        return true;
      default:
        this.#out.pass(buf, s, e);
        return true;
    }
  }

  streamStart(): boolean {
    return true;
  }

  streamBytes(buf: Buffer, start: number, end: number): void {
    this.#out.pass(buf, start, end);
  }

  #ready(buf: Buffer, s: number, e: number): void {
    const q = this.queue;
    const status = buf[s + 5]!;
    this.status = status;
    this.copyIn = false;
    // The Sync, Query or FunctionCall this answers (anything before it was answered or skipped).
    while (!q.empty) {
      const kind = q.headKind;
      q.shift();
      if (kind >= REQ.sync) break;
    }
    const client = this.#client;
    if (!client) {
      this.emitFakes();
      return;
    }
    const idle = q.empty && status === STATUS_IDLE;
    if (idle) this.watchDiscard = false;
    // The ReadyForQuery joins what goes to the client in one write. If the client lets go of this
    // connection here, it marks it free first and only then flushes: free before the client can see it.
    this.#out.pass(buf, s, e);
    client.readyForQuery(status, idle);
    this.emitFakes();
  }

  #error(buf: Buffer, s: number, e: number): void {
    const { code, message } = errorFields(buf, s, e);
    if (code === '0A000' && message.includes('cached plan must not change result type')) this.doomed = true;
    // The gateway's record of prepared statements no longer matches the server's.
    if (code === '26000' || code === '42P05') this.doomed = true;
    const q = this.queue;
    if (q.headKind >= REQ.parse && q.headKind <= REQ.execute) {
      // After an error in an extended-protocol batch the server skips to the next Sync: so does the queue.
      while (!q.empty && q.headKind < REQ.sync) {
        if (q.headKind === REQ.parse && q.headName) this.statements.delete(q.headName);
        q.shift();
      }
    }
    this.#out.pass(buf, s, e);
  }

  #parameterStatus(buf: Buffer, s: number, e: number): void {
    const [name, value] = this.#noteReported(buf, s, e);
    const client = this.#client;
    if (client && FOLLOWED_PARAMS.has(name.toLowerCase())) client.parameterChanged(name, value);
  }

  #noteReported(buf: Buffer, s: number, e: number): [string, string] {
    const nameEnd = buf.indexOf(0, s + 5);
    const name = buf.toString('utf8', s + 5, nameEnd);
    const value = buf.toString('utf8', nameEnd + 1, e - 1);
    return [name, value];
  }

  #noteTag(buf: Buffer, s: number, e: number): void {
    const tag = buf.toString('latin1', s + 5, e - 1);
    if (tag === 'DISCARD ALL' || tag === 'DEALLOCATE ALL') this.statements.clear();
    if (tag === 'DISCARD ALL') this.params.forget();
  }

  #collect(type: number, buf: Buffer, s: number, e: number): void {
    const c = this.#collecting[0]!;
    if (type === T_ROW) {
      const n = buf.readInt16BE(s + 5);
      const row: (string | null)[] = [];
      let at = s + 7;
      for (let i = 0; i < n; i++) {
        const len = buf.readInt32BE(at);
        at += 4;
        if (len < 0) row.push(null);
        else {
          row.push(buf.toString('utf8', at, at + len));
          at += len;
        }
      }
      c.rows.push(row);
    } else if (type === T_ERROR) {
      c.error ??= errorFields(buf, s, e).message;
      const q = this.queue;
      while (!q.empty && q.headKind < REQ.sync) q.shift();
    } else if (type === T_READY) {
      this.status = buf[s + 5]!;
      this.queue.shift();
      this.#collecting.shift();
      c.done({ rows: c.rows, error: c.error });
    }
  }

  #gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.#untrack();
    for (const c of this.#collecting.splice(0)) c.fail(new Error('server connection closed'));
    const client = this.#client;
    if (client) {
      this.#out.flush();
      client.serverLost();
    }
    this.#onGone(this);
  }
}

const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

export function queryMessage(sql: string): Buffer {
  const text = Buffer.from(sql + '\0', 'utf8');
  const out = Buffer.allocUnsafe(5 + text.length);
  out[0] = 0x51; // 'Q'
  out.writeInt32BE(4 + text.length, 1);
  text.copy(out, 5);
  return out;
}

/** SQLSTATE and message of an ErrorResponse. */
export function errorFields(buf: Buffer, s: number, e: number): { code: string; message: string } {
  let code = '';
  let message = '';
  let at = s + 5;
  while (at < e && buf[at] !== 0) {
    const tag = buf[at]!;
    const end = buf.indexOf(0, at + 1);
    if (end < 0 || end > e) break;
    if (tag === 0x43) code = buf.toString('latin1', at + 1, end);
    else if (tag === 0x4d) message = buf.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return { code, message };
}
