import type { OnReadOpts, Socket } from 'node:net';

/** libuv's own read size for a stream. */
const READ_BYTES = 64 * 1024;

/**
 * Reads of a compute socket into one reused buffer (net's `onread`): per read,
 * no 64 KiB allocation, no Buffer object and no Readable machinery, which
 * profiles showed among the largest per-transaction costs after the system
 * calls themselves. The price: a chunk is valid only during its callback. A
 * reader copies whatever it keeps, and calls `retain()` when a write of the
 * chunk's bytes could not finish at once: the next read then goes to a fresh
 * buffer, so bytes still queued for writing are never overwritten.
 *
 * Until a reader takes over (`readWith`), chunks are copied and emitted as
 * 'data' events, as a plain socket would: the login reads them that way.
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
