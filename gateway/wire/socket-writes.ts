import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/**
 * Writes to a socket straight through its libuv handle when nothing is queued,
 * skipping Node's Writable machinery (write → writeOrBuffer → _writeGeneric →
 * createWriteWrap → afterWrite on the next tick …), which profiles put at
 * ~0.35 µs of CPU per write, two writes per pooled transaction.
 *
 * It relies on Node internals, the same ones net.Socket uses for its own writes:
 * `process.binding('stream_wrap')` (WriteWrap and the shared streamBaseState),
 * `socket._handle.writeBuffer` and `handle.writeQueueSize`. If any of them is
 * missing or would warn (another Node, a permission model, --pending-deprecation),
 * every write takes the plain `socket.write`.
 *
 * The byte count needs no help: `socket.bytesWritten` reads the handle's own
 * counter, which the handle's writeBuffer advances.
 */

interface WriteReq {
  handle: StreamHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
  socket: Socket | null;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  readonly writeQueueSize: number;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

/** Internals a plain, connected net.Socket has (not in the public types). */
interface SocketInternals {
  _handle?: { writeBuffer?: unknown; writeQueueSize?: number } | null;
  encrypted?: boolean;
  timeout?: number;
}

function loadBinding(): StreamWrapBinding | null {
  const load = (process as unknown as { binding?: (name: string) => Partial<StreamWrapBinding> }).binding;
  // Under --pending-deprecation Node wraps process.binding to warn (DEP0111), and with
  // --throw-deprecation it throws on a later tick, beyond any catch here: then do without.
  if (typeof load !== 'function' || load.name !== 'binding') return null;
  try {
    const b = load.call(process, 'stream_wrap');
    if (typeof b.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array) || typeof b.kLastWriteWasAsync !== 'number') return null;
    return b as StreamWrapBinding;
  } catch {
    return null;
  }
}

const binding = loadBinding();

/** Whether writes can bypass the stream layer in this process (false: every write is a plain socket.write). */
export const directWritesAvailable = binding !== null;

/** A write finished later (libuv queued it): only a failure matters, and it ends the socket as Node's own would. */
function onDirectWriteComplete(this: WriteReq, status: number): void {
  directWritesInFlight--;
  this.buffer = null;
  const socket = this.socket;
  this.socket = null;
  if (status < 0 && socket && !socket.destroyed) socket.destroy(writeError(status));
}

function writeError(errno: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`write ${code}`), { errno, code, syscall: 'write' });
}

/**
 * Writes `data` to `socket`. Returns true when some of it is still queued: the
 * caller must then leave the bytes `data` views unchanged until the socket has
 * written them (they are not copied).
 */
export function writeToSocket(socket: Socket, data: Buffer): boolean {
  const s = socket as Socket & SocketInternals;
  const handle = s._handle;
  // The direct write only when it cannot overtake or hide anything:
  // - nothing buffered in the Writable (writableLength 0), or this write would overtake it;
  // - nothing queued in libuv (writeQueueSize 0): at most one direct write is ever in flight, so
  //   the next write goes through socket.write, whose Writable sees its own write pending, buffers
  //   what follows and reports writableNeedDrain / 'drain' as before (late by at most this one write);
  // - open and connected (`writable` is false once ended or destroyed: no write slips past end());
  // - not TLS: its handle encrypts in a layer of its own and aborts the process on a write made
  //   while one of its own is pending;
  // - no idle timeout: Node refreshes it on each write and keeps it from firing during a long
  //   one (the gateway sets none on its sockets, so it costs nothing there).
  if (
    binding === null ||
    handle == null ||
    s.writableLength !== 0 ||
    // Only a direct write can leave libuv's queue non-empty while the Writable is empty: while none is in flight, no need to ask.
    (directWritesInFlight > 0 && handle.writeQueueSize !== 0) ||
    typeof handle.writeBuffer !== 'function' ||
    !s.writable ||
    s.connecting ||
    s.encrypted === true ||
    s.timeout
  ) {
    socket.write(data);
    return socket.writableLength > 0;
  }
  const h = handle as unknown as StreamHandle;
  // A write that completes at once never touches its request object (Node makes the native
  // request only for a write libuv queues), so one spare serves every such write; making a
  // WriteWrap per write was a visible cost of its own.
  const req = (spare ??= newRequest(binding));
  req.handle = h;
  req.socket = socket;
  const err = h.writeBuffer(req, data);
  if (err !== 0) {
    req.socket = null;
    socket.destroy(writeError(err));
    return false;
  }
  if (binding.streamBaseState[binding.kLastWriteWasAsync] !== 0) {
    // libuv writes the rest later from `data` itself: keep it alive until then. The request is now that write's.
    spare = null;
    req.async = true;
    req.buffer = data;
    directWritesInFlight++;
    return true;
  }
  req.socket = null;
  return false;
}

let spare: WriteReq | null = null;
/** Direct writes libuv still holds, over all sockets. */
let directWritesInFlight = 0;

function newRequest(b: StreamWrapBinding): WriteReq {
  const req = new b.WriteWrap();
  req.oncomplete = onDirectWriteComplete;
  req.async = false;
  req.bytes = 0;
  req.buffer = null;
  req.socket = null;
  return req;
}
