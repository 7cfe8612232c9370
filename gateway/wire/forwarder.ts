import type { Socket } from 'node:net';
import { writeToSocket } from './socket-writes.js';

/**
 * Writes byte ranges to a socket, joining ranges that follow each other in the
 * same chunk into one view (never a copy): a chunk that passes through unchanged
 * costs one `write`. What goes out between two flushes leaves in one write
 * (small pieces copied together), so a rewritten message or a gateway's own
 * answer in the middle of a chunk does not cost a system call of its own.
 */
export class Forwarder {
  #buf: Buffer | null = null;
  #start = 0;
  #end = 0;
  /** Pieces waiting for the flush, in order, when there is more than the current range. */
  #pieces: Buffer[] = [];
  /** A flush left bytes queued on the socket rather than written at once (the views may still be read). Reset by the reader. */
  wrotePending = false;

  constructor(public target: Socket | null) {}

  pass(buf: Buffer, start: number, end: number): void {
    if (this.#buf === buf && this.#end === start) {
      this.#end = end;
      return;
    }
    this.#hold();
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
  }

  write(bytes: Buffer): void {
    this.#hold();
    this.#pieces.push(bytes);
  }

  flush(): void {
    const target = this.target;
    let out: Buffer | null = null;
    if (this.#pieces.length === 0) {
      const buf = this.#buf;
      if (!buf) return;
      out = this.#start === 0 && this.#end === buf.length ? buf : buf.subarray(this.#start, this.#end);
    } else {
      this.#hold();
      out = this.#pieces.length === 1 ? this.#pieces[0]! : Buffer.concat(this.#pieces);
      this.#pieces = [];
    }
    this.#buf = null;
    if (target && !target.destroyed) {
      // Anything still queued may include `out`: the bytes it views must stay as they are.
      if (writeToSocket(target, out)) this.wrotePending = true;
    }
  }

  /** Forgets what was not flushed yet (its target went away). */
  drop(): void {
    this.#buf = null;
    this.#pieces = [];
  }

  #hold(): void {
    const buf = this.#buf;
    if (!buf) return;
    this.#buf = null;
    this.#pieces.push(this.#start === 0 && this.#end === buf.length ? buf : buf.subarray(this.#start, this.#end));
  }
}
