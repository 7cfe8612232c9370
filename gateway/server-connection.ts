import net from 'node:net';
import { serialize } from 'pg-protocol';
import type { BackendMessage, DatabaseError } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { Logger, Route } from '../core/index.js';
import { ScramClientSession, type ScramClientKeyCache } from './auth/scram-client.js';
import { dialCompute, whenConnected, type ComputeSockets } from './compute-sockets.js';
import { ComputeConnectError, isTransientSocketError, isTransientSqlState } from './retry.js';
import { startupMessage } from './wire/frontend-messages.js';
import { PacketReader, type WireMessage } from './wire/packet-reader.js';
import { SocketReads } from './wire/socket-reads.js';

/** What the gateway logs in to a compute with: the tenant role and its derived password (never the client's). */
export interface ComputeLogin {
  user: string;
  password: string;
  database: string;
  /** The client's other startup parameters (client_encoding, application_name, options …), passed on. */
  params: Record<string, string>;
}

/** The compute's own key for CancelRequest; never shown to clients. */
export interface ComputeCancelKey {
  processId: number;
  secretKey: number;
}

/** Startup replies can carry long notices, but nothing near this. */
const MAX_STARTUP_REPLY_BYTES = 1 << 20;

/**
 * One logged-in connection to a compute, ready for queries. Its own concept (not a
 * detail of the client's session) so a pool can hold these in transaction mode.
 */
export class ServerConnection {
  constructor(
    readonly socket: net.Socket,
    readonly route: Route,
    readonly cancelKey: ComputeCancelKey,
    /** ParameterStatus (and NoticeResponse) messages of the startup, as the compute sent them. */
    readonly startupMessages: Buffer[],
    /** The compute's ReadyForQuery, as sent. */
    readonly readyForQuery: Buffer,
    /** Bytes the compute sent after ReadyForQuery, read ahead during login. */
    readonly readAhead: Buffer,
    /** The socket's reads, into a reused buffer: whoever relays this connection takes them over. */
    readonly reads: SocketReads,
    /** The compute's Unix socket this connection went over; null over TCP. A cancel goes the same way. */
    readonly socketPath: string | null = null,
  ) {}

  close(): void {
    this.socket.destroy();
  }
}

/** How a connection reaches the compute: its Unix socket where that can work, and who hears of a fallback to TCP. */
export interface ComputeDial {
  sockets: ComputeSockets;
  logger: Logger;
}

/**
 * One attempt: connect (the compute's Unix socket, or TCP; a socket this gateway
 * cannot open falls back to TCP within the attempt), StartupMessage, SCRAM, and
 * the compute's startup replies up to ReadyForQuery.
 */
export async function openServerConnection(route: Route, login: ComputeLogin, keys: ScramClientKeyCache, timeoutMs: number, dial?: ComputeDial): Promise<ServerConnection> {
  const reads = new SocketReads();
  let socketPath = dial?.sockets.pathFor(route) ?? null;
  let socket = open(route, socketPath, reads);
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no answer from the compute within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
  try {
    try {
      await whenConnected(socket);
    } catch (err) {
      if (socketPath === null || !dial || !dial.sockets.fallsBack(err)) throw err;
      dial.sockets.fellBack(socketPath, err, dial.logger);
      socket.destroy();
      socketPath = null;
      socket = open(route, null, reads);
      await whenConnected(socket);
    }
    return await login_(socket, reads, route, login, keys, socketPath);
  } catch (err) {
    socket.destroy();
    if (err instanceof ComputeConnectError) throw err;
    const e = err as NodeJS.ErrnoException;
    const where = socketPath ?? `${route.host}:${route.port}`;
    throw new ComputeConnectError(`cannot reach the compute at ${where}: ${e.code ?? ''} ${e.message}`.trim(), isTransientSocketError(e));
  } finally {
    clearTimeout(timer);
  }
}

function open(route: Route, socketPath: string | null, reads: SocketReads): net.Socket {
  const socket = dialCompute(route, socketPath, reads.onread);
  reads.attach(socket);
  socket.on('error', () => undefined); // errors arrive through the reader or the connect promise
  return socket;
}

async function login_(socket: net.Socket, reads: SocketReads, route: Route, login: ComputeLogin, keys: ScramClientKeyCache, socketPath: string | null): Promise<ServerConnection> {
  let closedEarly: Error | undefined;
  const reader = new PacketReader(socket, () => closedEarly ?? Object.assign(new Error('compute closed the connection during login'), { code: 'ECONNRESET' }));
  socket.write(startupMessage({ ...login.params, user: login.user, database: login.database }));
  const scram = new ScramClientSession();
  const startupMessages: Buffer[] = [];
  let cancelKey: ComputeCancelKey | undefined;
  let serverFirst = '';
  for (;;) {
    const raw = await reader.readMessage(MAX_STARTUP_REPLY_BYTES);
    const msg = decode(raw);
    switch (msg.name) {
      case 'authenticationSASL': {
        const { mechanisms } = msg as unknown as { mechanisms: string[] };
        if (!mechanisms.includes('SCRAM-SHA-256')) throw new ComputeConnectError(`compute offers no SCRAM-SHA-256 (${mechanisms.join(', ')})`, false);
        socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.clientFirst()));
        break;
      }
      case 'authenticationSASLContinue': {
        serverFirst = (msg as unknown as { data: string }).data;
        const { nonce, salt, iterations } = scram.parseServerFirst(serverFirst);
        const k = await keys.get(login.user, login.password, salt, iterations);
        socket.write(serialize.sendSCRAMClientFinalMessage(scram.clientFinal(serverFirst, nonce, k)));
        break;
      }
      case 'authenticationSASLFinal':
        scram.verifyServerFinal((msg as unknown as { data: string }).data);
        break;
      case 'authenticationOk':
        break;
      case 'authenticationMD5Password':
      case 'authenticationCleartextPassword':
        throw new ComputeConnectError(`compute asked for ${msg.name}; computes must use SCRAM`, false);
      case 'parameterStatus':
      case 'notice':
        startupMessages.push(raw.raw);
        break;
      case 'backendKeyData': {
        const k = msg as unknown as { processID: number; secretKey: number };
        cancelKey = { processId: k.processID, secretKey: k.secretKey };
        break;
      }
      case 'readyForQuery':
        if (!cancelKey) throw new ComputeConnectError('compute sent no BackendKeyData', false);
        return new ServerConnection(socket, route, cancelKey, startupMessages, raw.raw, reader.detach(), reads, socketPath);
      case 'error': {
        const e = msg as unknown as DatabaseError;
        closedEarly = new Error('compute closed after an error');
        throw new ComputeConnectError(`compute refused the login: ${e.code} ${e.message}`, isTransientSqlState(e.code), e.code, raw.raw);
      }
      default:
        throw new ComputeConnectError(`unexpected message "${msg.name}" from the compute during login`, false);
    }
  }
}

/** pg-protocol decodes what computes send on the gateway's own connections (DESIGN §4). */
function decode(message: WireMessage): BackendMessage {
  let out: BackendMessage | undefined;
  new Parser().parse(message.raw, (m) => (out = m));
  if (!out) throw new ComputeConnectError(`undecodable message type 0x${message.type.toString(16)} from the compute`, false);
  return out;
}

