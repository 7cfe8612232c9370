import net, { type OnReadOpts, type Socket } from 'node:net';

/** libuv's own read size for a stream. */
const READ_BYTES = 64 * 1024;
/** Consecutive small reads after which a grown buffer goes back to the small size. */
const SMALL_READS_TO_SHRINK = 64;

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
  #buf: Buffer;
  #retained = false;
  #lastRead = 0;
  #smallReads = 0;
  #reader: ((chunk: Buffer) => void) | null = null;

  /**
   * `smallBytes`: start with a buffer this small, grow to 64 KiB while reads fill it, and go
   * back after a run of small reads. A buffer stays with its socket for the socket's life, so
   * for client sockets (thousands may sit idle) its size is what each costs in memory.
   */
  constructor(private readonly smallBytes = READ_BYTES) {
    this.#buf = Buffer.allocUnsafe(smallBytes);
  }

  /** For `net.connect({ ..., onread })`. */
  readonly onread: OnReadOpts = {
    buffer: () => this.#next(),
    callback: (n, buf) => {
      this.#lastRead = n;
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
    const size = this.#sizeForNextRead();
    if (this.#retained || size !== this.#buf.length) {
      this.#retained = false;
      this.#buf = Buffer.allocUnsafe(size);
    }
    return this.#buf;
  }

  #sizeForNextRead(): number {
    const size = this.#buf.length;
    if (size === READ_BYTES) {
      if (this.smallBytes === READ_BYTES || this.#lastRead > this.smallBytes / 2) {
        this.#smallReads = 0;
        return size;
      }
      return ++this.#smallReads >= SMALL_READS_TO_SHRINK ? this.smallBytes : size;
    }
    // A read that filled the small buffer: more is coming (a large message, a COPY).
    if (this.#lastRead === size) {
      this.#smallReads = 0;
      return READ_BYTES;
    }
    return size;
  }
}

const clientReads = new WeakMap<Socket, SocketReads>();
/**
 * A client's read buffer while its reads are small: a query or an extended-protocol batch
 * fits, and an idle client holds 1 KiB (a slice of Node's shared 8 KiB pool) rather than
 * the touched pages of a 64 KiB buffer (measured: +3.6 KiB RSS per idle client at 10k).
 */
const CLIENT_READ_BYTES = 1024;

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
  const reads = new SocketReads(CLIENT_READ_BYTES);
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
