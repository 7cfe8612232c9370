import type { Socket } from 'node:net';

/**
 * Writes byte ranges to a socket, joining ranges that follow each other in the
 * same chunk into one write: a chunk that passes through unchanged costs one
 * `write` of a view into it, never a copy.
 */
export class Forwarder {
  #buf: Buffer | null = null;
  #start = 0;
  #end = 0;

  constructor(public target: Socket | null) {}

  pass(buf: Buffer, start: number, end: number): void {
    if (this.#buf === buf && this.#end === start) {
      this.#end = end;
      return;
    }
    this.flush();
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
  }

  write(bytes: Buffer): void {
    this.flush();
    if (this.target && !this.target.destroyed) this.target.write(bytes);
  }

  flush(): void {
    const buf = this.#buf;
    if (!buf) return;
    this.#buf = null;
    if (!this.target || this.target.destroyed) return;
    this.target.write(this.#start === 0 && this.#end === buf.length ? buf : buf.subarray(this.#start, this.#end));
  }

  /** Forgets what was not flushed yet (its target went away). */
  drop(): void {
    this.#buf = null;
  }
}
