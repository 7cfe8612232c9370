import { GatewayError, protocolError, SQLSTATE } from '../errors.js';

/** Where the framer hands what it cut out of a byte stream. */
export interface FrameSink {
  /** A whole message, `buf[start, end)`. Returns false to stop before it (it is handed back unconsumed). */
  message(type: number, buf: Buffer, start: number, end: number): boolean;
  /** A message too large to wait for, of a type that need not be read whole: `total` bytes, type byte included. False stops before it. */
  streamStart(type: number, total: number): boolean;
  /** The next bytes of the message announced by `streamStart`. */
  streamBytes(buf: Buffer, start: number, end: number): void;
}

/** Messages are at most this large whole (Postgres's own limit for most messages is 1 GB). */
const MAX_WHOLE_BYTES = 1 << 30;

/**
 * Cuts a Postgres protocol byte stream into messages, without copying what arrives
 * whole inside one chunk (the common case). A message split across chunks is
 * assembled when the sink must read it (`wantsWhole`), else streamed through as
 * it comes. Only headers are read here; the sink decides what else to look at.
 */
export class MessageFramer {
  /** A header split across chunks; made when one first is (its own memory, not a slice that keeps a shared pool block alive). */
  #head: Buffer | null = null;
  #headHave = 0;
  #whole: Buffer | null = null;
  #wholeHave = 0;
  #streamLeft = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly wantsWhole: (type: number) => boolean,
    /** Larger messages are refused with 54000 (the client side's limit; the server side has none but the 1 GB one). */
    private readonly maxMessageBytes = 0,
  ) {}

  /** No message is half read: the stream is between two messages. */
  get atBoundary(): boolean {
    return this.#headHave === 0 && this.#whole === null && this.#streamLeft === 0;
  }

  /** Feeds a chunk. Returns the bytes the sink stopped before (to push again later), or null when all were taken. */
  push(chunk: Buffer): Buffer | null {
    const len = chunk.length;
    let at = 0;
    if (this.#streamLeft > 0) {
      const n = Math.min(this.#streamLeft, len);
      this.#streamLeft -= n;
      this.sink.streamBytes(chunk, 0, n);
      at = n;
    } else if (this.#whole) {
      const n = Math.min(this.#whole.length - this.#wholeHave, len);
      chunk.copy(this.#whole, this.#wholeHave, 0, n);
      this.#wholeHave += n;
      at = n;
      if (this.#wholeHave < this.#whole.length) return null;
      const whole = this.#whole;
      this.#whole = null;
      if (!this.sink.message(whole[0]!, whole, 0, whole.length)) return at < len ? Buffer.concat([whole, chunk.subarray(at)]) : whole;
    } else if (this.#headHave > 0) {
      const n = Math.min(5 - this.#headHave, len);
      chunk.copy(this.#head!, this.#headHave, 0, n);
      this.#headHave += n;
      at = n;
      if (this.#headHave < 5) return null;
      this.#headHave = 0;
      const head = Buffer.from(this.#head!);
      const stopped = this.#begin(head, chunk, at);
      if (stopped === -1) return at < len ? Buffer.concat([head, chunk.subarray(at)]) : head;
      at = stopped;
    }
    while (at < len) {
      const left = len - at;
      if (left < 5) {
        chunk.copy((this.#head ??= Buffer.alloc(5)), 0, at, len);
        this.#headHave = left;
        return null;
      }
      const type = chunk[at]!;
      const total = chunk.readInt32BE(at + 1) + 1;
      if (total < 5) throw protocolError('invalid message length', `message type 0x${type.toString(16)} said ${total - 1} bytes`);
      if (this.maxMessageBytes > 0 && total - 1 > this.maxMessageBytes) throw messageTooLarge(type, total - 1, this.maxMessageBytes);
      if (total <= left) {
        if (!this.sink.message(type, chunk, at, at + total)) return chunk.subarray(at);
        at += total;
        continue;
      }
      if (this.wantsWhole(type)) {
        if (total > MAX_WHOLE_BYTES) throw protocolError('message too long', `message type 0x${type.toString(16)} is ${total} bytes`);
        this.#whole = Buffer.allocUnsafe(total);
        chunk.copy(this.#whole, 0, at, len);
        this.#wholeHave = left;
        return null;
      }
      if (!this.sink.streamStart(type, total)) return chunk.subarray(at);
      this.sink.streamBytes(chunk, at, len);
      this.#streamLeft = total - left;
      return null;
    }
    return null;
  }

  /** A message whose 5-byte header arrived split: starts it with the bytes that follow. Returns where the chunk goes on, or -1 when the sink stopped. */
  #begin(head: Buffer, chunk: Buffer, at: number): number {
    const type = head[0]!;
    const total = head.readInt32BE(1) + 1;
    if (total < 5) throw protocolError('invalid message length', `message type 0x${type.toString(16)} said ${total - 1} bytes`);
    if (this.maxMessageBytes > 0 && total - 1 > this.maxMessageBytes) throw messageTooLarge(type, total - 1, this.maxMessageBytes);
    const left = chunk.length - at;
    if (total === 5) return this.sink.message(type, head, 0, 5) ? at : -1;
    if (this.wantsWhole(type) || total - 5 <= left) {
      if (total > MAX_WHOLE_BYTES) throw protocolError('message too long', `message type 0x${type.toString(16)} is ${total} bytes`);
      const whole = Buffer.allocUnsafe(total);
      head.copy(whole, 0);
      const n = Math.min(total - 5, left);
      chunk.copy(whole, 5, at, at + n);
      if (n < total - 5) {
        this.#whole = whole;
        this.#wholeHave = 5 + n;
        return chunk.length;
      }
      return this.sink.message(type, whole, 0, total) ? at + n : -1;
    }
    if (!this.sink.streamStart(type, total)) return -1;
    this.sink.streamBytes(head, 0, 5);
    this.sink.streamBytes(chunk, at, chunk.length);
    this.#streamLeft = total - 5 - left;
    return chunk.length;
  }
}

/** 54000 program_limit_exceeded: the message is well formed, only larger than this gateway allows. */
function messageTooLarge(type: number, length: number, max: number): GatewayError {
  const name = type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16)}`;
  return new GatewayError(SQLSTATE.programLimitExceeded, 'message too large', 'protocol_error', `a ${name} message of ${length} bytes; the gateway accepts at most ${max} (PGWAKE_MAX_CLIENT_MESSAGE_BYTES)`, 'send large data with COPY, or in smaller statements');
}
