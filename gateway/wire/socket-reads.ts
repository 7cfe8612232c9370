import net, { type OnReadOpts, type Socket } from 'node:net';

/** libuv's own read size for a stream. */
const READ_BYTES = 64 * 1024;

/**
 * Reads of a socket into one reused buffer (net's `onread`): per read,
 * no 64 KiB allocation, no Buffer object and no Readable machinery, which
 * profiles showed among the largest per-transaction costs after the system
 * calls themselves. The price: a chunk is valid only during its callback. A
 * reader copies whatever it keeps, and calls `retain()` when a write of the
 * chunk's bytes could not finish at once: the next read then goes to a fresh
 * buffer, so bytes still queued for writing are never overwritten.
 *
 * Until a reader takes over (`readWith`), chunks are copied and emitted as
 * 'data' events, as a plain socket would: the login reads them that way.
 *
 * Compute sockets get theirs from `net.connect`; accepted client sockets from
 * `adoptAccepted`, as `net.Server` has no `onread` of its own.
 */
export class SocketReads {
  #socket: Socket | null = null;
  #buf = Buffer.allocUnsafe(READ_BYTES);
  #retained = false;
  #reader: ((chunk: Buffer) => void) | null = null;

  /** For `net.connect({ ..., onread })`. */
  readonly onread: OnReadOpts = {
    buffer: () => this.#next(),
    callback: (n, buf) => {
      const chunk = (buf as Buffer).subarray(0, n);
      if (this.#reader) this.#reader(chunk);
      else this.#socket?.emit('data', Buffer.from(chunk));
      return true; // flow control is the reader's, with pause() and resume()
    },
  };

  /** The socket made with `onread` (needed for the 'data' events before a reader takes over). */
  attach(socket: Socket): void {
    this.#socket = socket;
  }

  /** From now on each chunk goes to `reader`, valid only until it returns. */
  readWith(reader: (chunk: Buffer) => void): void {
    this.#reader = reader;
  }

  /** The chunk just read is still referenced (a write of it is pending): it must not be read into again. */
  retain(): void {
    this.#retained = true;
  }

  #next(): Buffer {
    if (this.#retained) {
      this.#retained = false;
      this.#buf = Buffer.allocUnsafe(READ_BYTES);
    }
    return this.#buf;
  }
}

const clientReads = new WeakMap<Socket, SocketReads>();

/**
 * An accepted socket (from a server with `pauseOnConnect`, so nothing was read yet)
 * moved to a socket of its own that reads through a `SocketReads`: the same
 * connection, handle and options. net.Server has no `onread`, so this takes the
 * handle (`_handle`, which Node's own wrappers pass the same way) and leaves the
 * accepted socket without one, closed at once so the server's connection count
 * drops. Without a handle to take (not a plain TCP socket) the accepted socket
 * is returned as it is, and reads as a stream.
 */
export function adoptAccepted(accepted: Socket): Socket {
  const holder = accepted as unknown as { _handle: unknown };
  const handle = holder._handle;
  if (!handle || accepted.destroyed) return accepted;
  const reads = new SocketReads();
  holder._handle = null;
  accepted.destroy();
  const socket = new net.Socket({ handle, readable: true, writable: true, onread: reads.onread } as net.SocketConstructorOpts);
  reads.attach(socket);
  clientReads.set(socket, reads);
  return socket;
}

/** The reused-buffer reads of a socket `adoptAccepted` made (none for others: TLS sockets, or a socket it left as it was). */
export function readsOf(socket: Socket): SocketReads | undefined {
  return clientReads.get(socket);
}
