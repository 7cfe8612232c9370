import type { Socket } from 'node:net';
import type { DbRecord, Logger, PoolMode } from '../../core/index.js';
import type { ClientActivity } from '../activity.js';
import { ClientGone, errorResponse, GatewayError, SQLSTATE } from '../errors.js';
import type { GatewayMetrics } from '../metrics.js';
import type { ServerConnection } from '../server-connection.js';
import { PARSE_COMPLETE, readyForQuery } from '../wire/backend-messages.js';
import { MessageFramer, type FrameSink } from '../wire/framer.js';
import { readsOf } from '../wire/socket-reads.js';
import type { Freezes } from './freeze.js';
import { PoolServer, queryMessage, STATUS_IDLE, type ServerClient } from './pool-server.js';
import type { ServerPool, Waiter } from './pool.js';
import { ClientStatements, closeStatement, readBind, readParse, readTarget, renamed, renamedParse, serverNameOf, type ClientStatement, type ParsedParse } from './prepared-statements.js';
import { ACTION, REQ, type RequestAction } from './request-queue.js';
import { captureSession, replaySession, type SessionState } from './session-move.js';
import { DROPS_ALL_STATEMENTS, LEAVES_SESSION_STATE, mayTouchSession, sessionVerdict, UnnamedParseVerdicts } from './server-reset.js';
import type { ClientParams } from './startup-params.js';

const M_QUERY = 0x51; // Q
const M_PARSE = 0x50; // P
const M_BIND = 0x42; // B
const M_DESCRIBE = 0x44; // D
const M_CLOSE = 0x43; // C
const M_EXECUTE = 0x45; // E
const M_SYNC = 0x53; // S
const M_FUNCTION = 0x46; // F
const M_COPY_DONE = 0x63; // c
const M_COPY_FAIL = 0x66; // f
const M_TERMINATE = 0x58; // X
const KIND_STATEMENT = 0x53; // 'S' in Describe and Close
/** What a client may send ahead while it waits for a checkout before its socket is paused. */
const STALLED_HIGH_WATER_BYTES = 256 * 1024;

/** Transaction mode reads these whole: it renames statements in them and looks at their SQL. */
const WHOLE_IN_TRANSACTION_MODE = new Set([M_QUERY, M_PARSE, M_BIND, M_DESCRIBE, M_CLOSE]);
/** The framer's question, one function for every client (not a closure each). */
const wholeInTransactionMode = (type: number): boolean => WHOLE_IN_TRANSACTION_MODE.has(type);
const neverWhole = (): boolean => false;
/** A client socket's error ends it (its close ends the client); one listener shared by every socket. */
function destroySocket(this: Socket): void {
  this.destroy();
}

interface Common {
  db: DbRecord;
  log: Logger;
  metrics: GatewayMetrics;
  freezes: Freezes;
  activity: ClientActivity;
  /** Larger client messages end the connection with 54000 (0: no limit of the gateway's own). */
  maxMessageBytes?: number;
}

export interface TransactionModeClient extends Common {
  mode: 'transaction';
  pool: ServerPool;
  params: ClientParams;
}

export interface SessionModeClient extends Common {
  mode: 'session';
  server: PoolServer;
  /** Whether a server connection still talks to the db's current writer. */
  routeMatches(server: PoolServer): boolean;
  /** A new connection to the db's writer as the route says now, with the session's login: for a move. */
  reconnect(signal: AbortSignal): Promise<ServerConnection>;
}

export type PooledClientOptions = TransactionModeClient | SessionModeClient;

/**
 * One client after its startup, in either pool mode. Its messages are cut at
 * message boundaries and passed to the server connection it holds, as byte
 * ranges; a message that arrives while it holds none waits (the socket paused if it sends a lot)
 * until a checkout gives it one. In transaction mode the checkout lasts one
 * transaction and statement names are mapped to the server's; in session mode
 * the client keeps its own server connection, and is only held back by a
 * freeze, after which it may move to the new writer with its session.
 */
export class PooledClient implements ServerClient, FrameSink {
  readonly statements = new ClientStatements();
  #server: PoolServer | null = null;
  /** Session mode: the client's own connection, kept while a freeze holds the client. */
  #own: PoolServer | null = null;
  #framer: MessageFramer;
  #stalled: Buffer[] = [];
  #stalledBytes = 0;
  #stalledPause = false;
  #waiting = false;
  #busy = false;
  #discarding = false;
  /** What the SQL of this client's recent unnamed Parses may do; made at its first. */
  #unnamedParses: UnnamedParseVerdicts | null = null;
  /** Named Parses answered by the gateway whose ParseComplete the client has not been sent yet. */
  #localParses = 0;
  #streaming: PoolServer | null = null;
  #drainWait = false;
  /** Aborted when the client leaves; made on first use (only a wait that outlives a message needs it). */
  #left: AbortController | null = null;
  #ended = false;
  #capture: Promise<SessionState> | null = null;
  /** In the pool's queue now. */
  #waiter: Waiter | null = null;
  #ownWaiter: Waiter | null = null;
  #finish!: () => void;
  /** Chunks arrive in the socket's reused read buffer (valid only while they are handled): what is kept is copied. */
  #chunksReused = false;
  /** A write of the chunk being handled could not finish at once: its bytes are still queued, so its buffer must not be read into again. */
  #chunkStillQueued = false;
  readonly done: Promise<void>;

  constructor(
    readonly socket: Socket,
    private readonly o: PooledClientOptions,
  ) {
    this.done = new Promise((resolve) => (this.#finish = resolve));
    this.#framer = new MessageFramer(this, o.mode === 'transaction' ? wholeInTransactionMode : neverWhole, o.maxMessageBytes);
  }

  /** Starts relaying; `readAhead` is what the client sent before its greeting was written. */
  start(readAhead: Buffer): Promise<void> {
    const socket = this.socket;
    const reads = readsOf(socket);
    if (reads) {
      this.#chunksReused = true;
      reads.readWith((chunk) => {
        this.#received(chunk);
        if (this.#chunkStillQueued) {
          this.#chunkStillQueued = false;
          reads.retain();
        }
      });
    } else {
      socket.on('data', this.#onData);
    }
    // `on`, not `once`: a socket closes once, and `once` wraps each listener in two more objects kept per client.
    socket.on('close', () => this.#clientGone());
    socket.on('error', destroySocket);
    if (this.o.mode === 'session') {
      this.#own = this.o.server;
      this.#link(this.o.server);
    }
    if (socket.destroyed) {
      this.#clientGone();
      return this.done;
    }
    socket.resume();
    if (readAhead.length > 0) this.#onData(readAhead);
    return this.done;
  }

  #leftSignal(): AbortSignal {
    if (!this.#left) {
      this.#left = new AbortController();
      if (this.#ended) this.#left.abort();
    }
    return this.#left.signal;
  }

  get dbId(): string {
    return this.o.db.id;
  }

  /** Whether the client holds a server connection for a request or transaction now. */
  get busy(): boolean {
    return this.#busy;
  }

  /** The server connection a cancel from this client is meant for, if any. */
  get currentServer(): PoolServer | null {
    return this.#server ?? (this.#busy ? this.#own : null);
  }

  // ---- the client's bytes ----

  /**
   * The socket's data listener, bound rather than an arrow field: run under tsx
   * (keepNames), an arrow field also gets a name property of its own, ~300 bytes
   * more per client (100k instances: 400 vs 105 bytes each).
   */
  #onData = this.#received.bind(this);

  #received(chunk: Buffer): void {
    if (this.#ended) return;
    if (this.#waiting || this.#stalled.length > 0) {
      this.#stall(chunk);
      return;
    }
    if (this.#server === null && this.#queuesAtOnce(chunk)) {
      this.#stall(chunk);
      this.#needServer();
      return;
    }
    this.#feed(chunk, this.#chunksReused);
  }

  #stall(chunk: Buffer): void {
    this.#stalled.push(this.#chunksReused ? Buffer.from(chunk) : chunk);
    this.#stalledBytes += chunk.length;
    // A client that pipelines a lot while it waits is stopped from sending more; one query never is (pausing costs).
    if (this.#stalledBytes > STALLED_HIGH_WATER_BYTES && !this.#stalledPause) {
      this.#stalledPause = true;
      this.socket.pause();
    }
  }

  /**
   * Whether a chunk from a client that holds no server goes straight to the pool's queue,
   * unread: others already wait there (so no checkout could be had now) and it starts with a
   * request that needs a server anyway (a Query, a Bind, an unnamed Parse). It is framed once,
   * after its checkout, rather than also once before to find out that it must wait.
   */
  #queuesAtOnce(chunk: Buffer): boolean {
    const o = this.o;
    if (o.mode !== 'transaction' || this.#discarding || this.#localParses > 0 || o.pool.queue.length === 0 || chunk.length < 6) return false;
    const type = chunk[0];
    return type === M_QUERY || type === M_BIND || (type === M_PARSE && chunk[5] === 0);
  }

  /** `reused`: the chunk is the socket's read buffer, so what waits of it is copied. */
  #feed(chunk: Buffer, reused: boolean): void {
    const before = this.#server;
    let rest: Buffer | null;
    try {
      rest = this.#framer.push(chunk);
    } catch (err) {
      this.#fatal(err instanceof GatewayError ? err : new GatewayError(SQLSTATE.protocolViolation, (err as Error).message, 'protocol_error'));
      return;
    } finally {
      // One write per chunk to the server this client holds (and to one it took during the chunk).
      if (before) this.#flushTo(before);
      const taken = this.#server;
      if (taken && taken !== before) this.#flushTo(taken);
    }
    if (rest) {
      if (reused) rest = Buffer.from(rest);
      // Back at the head of what waits (usually nothing else does: a push, as unshift costs a slow builtin call).
      if (this.#stalled.length === 0) this.#stalled.push(rest);
      else this.#stalled.unshift(rest);
      this.#stalledBytes += rest.length;
      this.#needServer();
      return;
    }
    const target = this.#server?.socket;
    if (target && target.writableNeedDrain && !this.#drainWait) {
      this.#drainWait = true;
      this.socket.pause();
      target.once('drain', () => {
        this.#drainWait = false;
        if (!this.#waiting && !this.#ended && !this.#stalledPause) this.socket.resume();
      });
    }
  }

  #flushTo(server: PoolServer): void {
    const out = server.toServer;
    out.flush();
    if (out.wrotePending) {
      out.wrotePending = false;
      this.#chunkStillQueued = true;
    }
  }

  #drainStalled(): void {
    while (!this.#waiting && !this.#ended && this.#stalled.length > 0) {
      const chunk = this.#stalled.shift()!;
      this.#stalledBytes -= chunk.length;
      this.#feed(chunk, false);
    }
    if (this.#stalledPause && !this.#waiting && !this.#ended && !this.#drainWait) {
      this.#stalledPause = false;
      this.socket.resume();
    }
  }

  message(type: number, buf: Buffer, s: number, e: number): boolean {
    if (this.#discarding) {
      if (type === M_TERMINATE) this.#terminate();
      else if (type === M_QUERY || type === M_SYNC) {
        this.#discarding = false;
        this.socket.write(readyForQuery('I'));
      }
      return true;
    }
    if (type === M_TERMINATE) {
      this.#terminate();
      return true;
    }
    const tx = this.o.mode === 'transaction';
    if (tx && this.#server === null) {
      if (type === M_PARSE && this.#parseLocally(this.o, buf, s, e)) return true;
      if (type === M_SYNC && this.#localParses > 0) {
        this.#answerLocalParses(readyForQuery('I'));
        return true;
      }
    }
    const server = this.#server ?? this.#takeIdle();
    if (!server) return false;
    if (!this.#busy) this.#beginCheckout();
    if (this.#localParses > 0) this.#answerLocalParsesOn(server);
    const q = server.queue;
    switch (type) {
      case M_QUERY:
        if (tx && mayTouchSession(buf, s + 5, e - 1)) this.#noteSession(server, sessionVerdict(buf.toString('utf8', s + 5, e - 1), false));
        q.push(REQ.query, ACTION.forward);
        break;
      case M_PARSE:
        if (tx) {
          this.#parse(server, buf, s, e);
          return true;
        }
        q.push(REQ.parse, ACTION.forward);
        break;
      case M_BIND:
        if (tx && this.#bind(server, buf, s, e)) return true;
        q.push(REQ.bind, ACTION.forward);
        break;
      case M_DESCRIBE:
        if (tx && this.#describe(server, buf, s, e)) return true;
        q.push(REQ.describe, ACTION.forward);
        break;
      case M_CLOSE:
        if (tx && this.#close(server, buf, s, e)) return true;
        q.push(REQ.close, ACTION.forward);
        break;
      case M_EXECUTE:
        q.push(REQ.execute, ACTION.forward);
        break;
      case M_SYNC:
        q.push(REQ.sync, ACTION.forward);
        break;
      case M_FUNCTION:
        q.push(REQ.functionCall, ACTION.forward);
        break;
      case M_COPY_DONE:
      case M_COPY_FAIL:
        server.copyIn = false;
        break;
    }
    server.toServer.pass(buf, s, e);
    return true;
  }

  streamStart(type: number): boolean {
    if (this.#discarding) {
      this.#streaming = null;
      return true;
    }
    const server = this.#server ?? this.#takeIdle();
    if (!server) return false;
    if (!this.#busy) this.#beginCheckout();
    const q = server.queue;
    switch (type) {
      case M_QUERY:
        q.push(REQ.query, ACTION.forward);
        break;
      case M_PARSE:
        q.push(REQ.parse, ACTION.forward);
        break;
      case M_BIND:
        q.push(REQ.bind, ACTION.forward);
        break;
      case M_DESCRIBE:
        q.push(REQ.describe, ACTION.forward);
        break;
      case M_CLOSE:
        q.push(REQ.close, ACTION.forward);
        break;
      case M_EXECUTE:
        q.push(REQ.execute, ACTION.forward);
        break;
      case M_FUNCTION:
        q.push(REQ.functionCall, ACTION.forward);
        break;
    }
    this.#streaming = server;
    return true;
  }

  streamBytes(buf: Buffer, start: number, end: number): void {
    this.#streaming?.toServer.pass(buf, start, end);
  }

  // ---- transaction mode: statements and session state ----

  /** What a statement's SQL may do (`sessionVerdict` bits), noted on the server and the client. */
  #noteSession(server: PoolServer, verdict: number): void {
    if (verdict & LEAVES_SESSION_STATE) server.dirty = true;
    if (verdict & DROPS_ALL_STATEMENTS) {
      this.statements.clear();
      server.watchDiscard = true;
    }
  }

  #parse(server: PoolServer, buf: Buffer, s: number, e: number): void {
    if (s + 6 < e && buf[s + 5] === 0) {
      // Unnamed: passed on as it is, after a look at what its SQL may leave behind.
      this.#noteSession(server, (this.#unnamedParses ??= new UnnamedParseVerdicts()).of(buf, s + 6, e));
      server.queue.push(REQ.parse, ACTION.forward);
      server.toServer.pass(buf, s, e);
      return;
    }
    const p = readParse(buf, s, e);
    const serverName = serverNameOf(buf, p.contentStart, e);
    const st = this.#remember(p, serverName, buf, e);
    if (server.statements.has(serverName)) {
      // Already prepared there (by this client or another): answered here, in its place in the pipeline.
      server.statements.touch(serverName);
      server.queue.push(REQ.parse, ACTION.fake);
      server.answerFakes();
      return;
    }
    this.#prepareOn(server, st, ACTION.forward);
  }

  /** The client's statement `p.name`, as its Parse says now. */
  #remember(p: ParsedParse, serverName: string, buf: Buffer, e: number): ClientStatement {
    let st = this.statements.get(p.name);
    if (!st || st.serverName !== serverName) {
      const sql = buf.toString('utf8', p.contentStart, p.queryEnd);
      st = { serverName, parse: renamedParse(buf, p.contentStart, e, serverName), touchesSession: sessionVerdict(sql, false) !== 0 };
      this.statements.set(p.name, st);
    }
    return st;
  }

  /**
   * A named Parse while this client holds no server, of a statement a server of the pool has
   * already prepared and accepted: remembered and answered by the gateway, without a checkout
   * (a later Bind prepares it wherever it runs). libpq's PQprepare, which pgbench -M prepared
   * uses, sends Parse and Sync and blocks its thread for the answer: were that answer to wait for
   * a checkout while the pool's servers are held by that thread's other clients mid-transaction,
   * the thread would wait on itself until the checkout timeout.
   */
  #parseLocally(o: TransactionModeClient, buf: Buffer, s: number, e: number): boolean {
    const p = readParse(buf, s, e);
    if (p.name === '') return false;
    const serverName = serverNameOf(buf, p.contentStart, e);
    if (!o.pool.hasPrepared(serverName)) return false;
    this.#remember(p, serverName, buf, e);
    this.#localParses++;
    return true;
  }

  /** The ParseComplete messages owed for local Parses (then `after`), straight to the client. */
  #answerLocalParses(after: Buffer): void {
    const out = Buffer.allocUnsafe(this.#localParses * PARSE_COMPLETE.length + after.length);
    for (let i = 0; i < this.#localParses; i++) PARSE_COMPLETE.copy(out, i * PARSE_COMPLETE.length);
    after.copy(out, this.#localParses * PARSE_COMPLETE.length);
    this.#localParses = 0;
    this.socket.write(out);
  }

  /** A checkout after local Parses: their ParseComplete answers go first, in pipeline order, from the server's queue. */
  #answerLocalParsesOn(server: PoolServer): void {
    for (; this.#localParses > 0; this.#localParses--) server.queue.push(REQ.parse, ACTION.fake);
    server.answerFakes();
  }

  #prepareOn(server: PoolServer, st: ClientStatement, action: RequestAction): void {
    for (const evicted of server.statements.add(st.serverName)) {
      server.queue.push(REQ.close, ACTION.drop);
      server.toServer.write(closeStatement(evicted));
    }
    server.queue.push(REQ.parse, action, st.serverName);
    server.toServer.write(st.parse);
  }

  /** Makes sure the statement is prepared on `server` (a lazy re-Parse), and notes what running it may leave behind. */
  #ensure(server: PoolServer, st: ClientStatement): void {
    if (server.statements.has(st.serverName)) server.statements.touch(st.serverName);
    else this.#prepareOn(server, st, ACTION.drop);
    if (st.touchesSession) server.dirty = true;
  }

  #bind(server: PoolServer, buf: Buffer, s: number, e: number): boolean {
    if (s + 7 <= e && buf[s + 5] === 0 && buf[s + 6] === 0) return false; // unnamed portal and statement: nothing to rename
    const b = readBind(buf, s, e);
    if (b.statement === '') return false;
    const st = this.statements.get(b.statement);
    if (!st) return false; // the server answers "does not exist"
    this.#ensure(server, st);
    server.queue.push(REQ.bind, ACTION.forward);
    server.toServer.write(renamed(buf, s, e, b.statementStart, b.statementEnd, st.serverName));
    return true;
  }

  #describe(server: PoolServer, buf: Buffer, s: number, e: number): boolean {
    // A portal, or the unnamed statement (the name's terminator is the message's last byte, so it is well formed): as it is.
    if (s + 7 <= e && buf[e - 1] === 0 && (buf[s + 5] !== KIND_STATEMENT || buf[s + 6] === 0)) return false;
    const d = readTarget(buf, s, e);
    if (d.kind !== KIND_STATEMENT || d.name === '') return false;
    const st = this.statements.get(d.name);
    if (!st) return false;
    this.#ensure(server, st);
    server.queue.push(REQ.describe, ACTION.forward);
    server.toServer.write(renamed(buf, s, e, d.nameStart, d.nameEnd, st.serverName));
    return true;
  }

  #close(server: PoolServer, buf: Buffer, s: number, e: number): boolean {
    const c = readTarget(buf, s, e);
    if (c.kind !== KIND_STATEMENT || c.name === '') return false;
    // Other clients may share the server's statement: it stays there, under the LRU's care.
    this.statements.delete(c.name);
    server.queue.push(REQ.close, ACTION.fake);
    server.answerFakes();
    return true;
  }

  // ---- what the server connection tells the client ----

  readyForQuery(status: number, idle: boolean): void {
    this.o.activity.transaction(status !== STATUS_IDLE);
    if (!idle) return;
    if (this.o.mode === 'transaction') {
      const server = this.#server!;
      // This client lets go first (its next message will need a new checkout); the pool may
      // hand the server on at once to the next client in the queue, whose request then goes
      // to the compute; only then is this client's last ReadyForQuery written.
      this.#server = null;
      this.#endCheckout();
      server.handOver();
      this.o.pool.release(server);
      server.flushHandedOver();
      return;
    }
    this.#endCheckout();
    if (this.o.freezes.frozen(this.o.db.id)) this.#park();
  }

  parameterChanged(name: string, value: string): void {
    if (this.o.mode !== 'transaction') return;
    this.o.params.set(name, value);
    this.#server?.params.follow(name, value, this.o.params.signature);
  }

  serverLost(): void {
    if (this.#ended) return;
    if (this.o.mode === 'session' && this.#server === null) return; // held by a freeze: it moves when the freeze is lifted
    this.#server = null;
    if (this.o.mode === 'session') {
      // As straight from Postgres: the client got every byte the compute sent (its FATAL too), then the end.
      this.#end();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 10_000).unref();
      return;
    }
    this.#fatal(new GatewayError(SQLSTATE.connectionFailure, 'the connection to the compute was lost', 'compute_unavailable', undefined, 'reconnect and try again'));
  }

  // ---- checkouts ----

  #beginCheckout(): void {
    this.#busy = true;
    this.o.activity.checkoutBegan();
  }

  #endCheckout(): void {
    if (!this.#busy) return;
    this.#busy = false;
    this.o.activity.checkoutEnded();
  }

  #needServer(): void {
    if (this.#waiting || this.#ended) return;
    this.#waiting = true;
    if (this.o.mode === 'transaction') return this.#enqueue(this.o);
    this.#unpark(this.o).then(
      () => this.#resume(),
      (err: unknown) => this.#failed(err),
    );
  }

  #resume(): void {
    this.#waiting = false;
    this.#drainStalled();
  }

  #failed(err: unknown): void {
    this.#waiting = false;
    if (this.#ended || err instanceof ClientGone) return;
    this.#checkoutFailed(err);
  }

  /**
   * Waits in the pool's queue; served by a callback, often synchronously from another client's release.
   * One waiter serves all of this client's checkouts (it is in the queue at most once at a time):
   * a checkout that waits allocates no closures.
   */
  #enqueue(o: TransactionModeClient): void {
    const w = (this.#ownWaiter ??= {
      enqueuedAt: 0,
      deadline: Infinity,
      resolve: (server) => {
        this.#waiter = null;
        this.#served(o, server);
      },
      reject: (err) => {
        this.#waiter = null;
        this.#failed(err);
      },
    });
    w.enqueuedAt = Date.now();
    w.deadline = Infinity;
    this.#waiter = w;
    o.pool.enqueue(w);
  }

  #served(o: TransactionModeClient, server: PoolServer): void {
    if (this.#ended) {
      o.pool.release(server);
      return;
    }
    this.#beginCheckout();
    // The pool checked the server's route as it handed it over, in this same tick.
    if (o.activity.reportedInUse()) {
      this.#link(server);
      this.#resume();
      return;
    }
    this.#confirm(o, server).then(
      () => this.#resume(),
      (err: unknown) => this.#failed(err),
    );
  }

  /** The rare path: counted and reported before the route is trusted, so an autoscaler that set `suspending` sees this checkout. */
  async #confirm(o: TransactionModeClient, first: PoolServer): Promise<void> {
    let server = first;
    try {
      await o.activity.reported();
      for (let i = 0; !o.pool.routeMatches(server) && i < 3; i++) {
        o.pool.discard(server);
        server = await o.pool.checkout(this.#leftSignal());
      }
    } catch (err) {
      this.#endCheckout();
      throw err;
    }
    if (this.#ended) {
      this.#endCheckout();
      o.pool.release(server);
      throw new ClientGone();
    }
    this.#link(server);
  }

  /**
   * The common case, without waiting: nobody queued, the db not frozen, an idle server
   * connection on the current route, and this db already reported in use (so the
   * suspend race cannot bite). Anything else takes the queue (`#checkout`).
   */
  #takeIdle(): PoolServer | null {
    const o = this.o;
    if (o.mode !== 'transaction' || this.#waiting || this.#ended || !o.activity.reportedInUse()) return null;
    const server = o.pool.takeIdle();
    if (!server) return null;
    this.#beginCheckout();
    this.#link(server);
    return server;
  }

  #link(server: PoolServer): void {
    server.link(this);
    this.#server = server;
    if (this.o.mode !== 'transaction') return;
    const sql = server.params.changesFor(this.o.params);
    if (sql) {
      server.queue.push(REQ.query, ACTION.drop);
      server.toServer.write(queryMessage(sql));
      server.toServer.flush();
    }
  }

  #checkoutFailed(err: unknown): void {
    const e =
      err instanceof GatewayError
        ? err
        : new GatewayError(SQLSTATE.internalError, 'the gateway could not serve this transaction', 'internal_error');
    if (!(err instanceof GatewayError)) this.o.log.error({ err }, 'checkout failed');
    // The connection stays open: the client hears an error for this request and may try again
    // (after the answers to Parses the gateway took locally, which came before it).
    const error = errorResponse({ severity: 'ERROR', sqlstate: e.sqlstate, message: e.message, detail: e.detail, hint: e.hint });
    if (this.#localParses > 0) this.#answerLocalParses(error);
    else this.socket.write(error);
    this.#discarding = true;
    this.#drainStalled();
  }

  // ---- session mode under a freeze ----

  /** A freeze was applied: an idle session lets go of its server now, a busy one when its transaction ends. */
  frozenNow(): void {
    if (this.o.mode === 'session' && !this.#busy && !this.#waiting && this.#server) this.#park();
  }

  /** The freeze was lifted: a held session goes back to work (moving if the writer changed) without waiting for its next query. */
  liftedNow(): void {
    if (this.o.mode === 'session' && this.#server === null && !this.#ended) this.#needServer();
  }

  #park(): void {
    const own = this.#server;
    if (!own) return;
    own.unlink();
    this.#server = null;
    // Reading the session's state is a request on the old writer: the freeze barrier waits for it.
    this.#beginCheckout();
    this.#capture = captureSession(own).finally(() => this.#endCheckout());
    this.#capture.catch((err: Error) => this.o.log.warn({ err: err.message }, "could not read the session's state before a move"));
  }

  async #unpark(o: SessionModeClient): Promise<void> {
    await o.freezes.waitLifted(o.db.id, o.db.name, this.#leftSignal());
    if (this.#server || this.#ended) return;
    const own = this.#own!;
    const state = await this.#capture?.catch(() => null);
    this.#capture = null;
    if (!own.closed && o.routeMatches(own)) {
      this.#link(own);
      return;
    }
    this.#beginCheckout();
    try {
      const conn = await o.reconnect(this.#leftSignal());
      const fresh = new PoolServer(conn, o.metrics.relayed, () => undefined);
      try {
        if (state) await replaySession(fresh, state);
      } catch (err) {
        fresh.close();
        throw err;
      }
      own.close();
      this.#own = fresh;
      if (this.#ended) return fresh.close();
      this.#link(fresh);
      o.log.info({ host: fresh.route.host, port: fresh.route.port, writer_term: fresh.route.writerTerm, settings: state?.settings.length ?? 0, statements: state?.statements.length ?? 0 }, 'session moved to the new writer');
    } catch (err) {
      if (err instanceof ClientGone || err instanceof GatewayError) throw err;
      this.#fatal(new GatewayError(SQLSTATE.connectionFailure, `the session could not move to the new writer: ${(err as Error).message}`, 'compute_unavailable', undefined, 'reconnect and try again'));
      throw new ClientGone();
    } finally {
      this.#endCheckout();
    }
  }

  // ---- endings ----

  #terminate(): void {
    if (this.o.mode === 'session') {
      this.#own?.toServer.write(TERMINATE);
      this.#own?.toServer.flush();
    }
    this.#end();
    this.socket.end();
  }

  #clientGone(): void {
    this.#end();
  }

  #fatal(err: GatewayError): void {
    if (this.#ended) return;
    this.#end();
    if (!this.socket.destroyed) {
      this.socket.end(errorResponse({ severity: 'FATAL', sqlstate: err.sqlstate, message: err.message, detail: err.detail, hint: err.hint }));
      setTimeout(() => this.socket.destroy(), 2_000).unref();
    }
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#left?.abort();
    if (this.#waiter && this.o.mode === 'transaction') this.o.pool.cancel(this.#waiter);
    this.#waiter = null;
    this.#stalled = [];
    const server = this.#server;
    this.#server = null;
    if (this.o.mode === 'transaction') {
      if (server) {
        server.toServer.flush();
        server.unlink();
        // Left mid-transaction: the server's state is unknown, so it is not used again.
        if (server.idle) this.o.pool.release(server);
        else this.o.pool.discard(server);
      }
    } else {
      server?.unlink();
      const own = this.#own;
      if (own) setImmediate(() => own.close());
    }
    this.#endCheckout();
    this.o.activity.close();
    this.#finish();
  }
}

const TERMINATE = Buffer.from([M_TERMINATE, 0, 0, 0, 4]);
