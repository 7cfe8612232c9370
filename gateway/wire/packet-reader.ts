import type { Duplex } from 'node:stream';
import { protocolError } from '../errors.js';
import { MAX_STARTUP_PACKET_BYTES } from './protocol.js';

/** One typed message: its type byte, its body, and its bytes as received (to forward without re-serialising). */
export interface WireMessage {
  type: number;
  body: Buffer;
  raw: Buffer;
}

const EMPTY = Buffer.alloc(0);
/** Bytes a peer may send ahead of what the gateway reads (a pipelined query during a wake) before reading pauses. */
const HIGH_WATER_BYTES = 256 * 1024;

/**
 * Reads the messages of the startup and authentication exchange from a socket,
 * checking every length before waiting for the bytes it announces, so a peer
 * cannot make the gateway buffer more than a message's limit. `detach()` hands
 * the socket, and whatever was read ahead, to the relay.
 */
export class PacketReader {
  #socket: Duplex;
  #buf: Buffer = EMPTY;
  #ended = false;
  #failure: Error | undefined;
  #waiter: (() => void) | undefined;
  #paused = false;
  #whenEnded: () => Error;
  #end: () => void;
  #onError: (err: Error) => void;
  readonly closed: Promise<void>;

  constructor(socket: Duplex, whenEnded: () => Error) {
    this.#socket = socket;
    this.#whenEnded = whenEnded;
    let markClosed!: () => void;
    this.closed = new Promise((resolve) => (markClosed = resolve));
    const end = (this.#end = () => {
      this.#ended = true;
      markClosed();
      this.#notify();
    });
    this.#onError = (err: Error) => {
      this.#failure ??= err;
      end();
    };
    socket.on('data', this.#onData);
    socket.once('end', end);
    socket.once('close', end);
    socket.on('error', this.#onError);
  }

  #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#buf.length > HIGH_WATER_BYTES && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    this.#notify();
  };

  #notify(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Stops every pending and later read with `err` (the startup deadline passed). */
  abort(err: Error): void {
    this.#failure = err;
    this.#notify();
  }

  get buffered(): number {
    return this.#buf.length;
  }

  async #need(n: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#failure) throw this.#failure;
      if (this.#ended) throw this.#whenEnded();
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
    if (this.#failure) throw this.#failure;
  }

  #take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.length === n ? EMPTY : this.#buf.subarray(n);
    if (this.#paused && this.#buf.length <= HIGH_WATER_BYTES) {
      this.#paused = false;
      this.#socket.resume();
    }
    return out;
  }

  /** A length-prefixed packet without a type byte (SSLRequest, CancelRequest, StartupMessage); returns what follows the length. */
  async readStartupPacket(): Promise<Buffer> {
    await this.#need(4);
    const length = this.#buf.readInt32BE(0);
    if (length < 8 || length > MAX_STARTUP_PACKET_BYTES) {
      // A TLS ClientHello here means a client trying direct TLS (sslnegotiation=direct).
      const hint = this.#buf[0] === 0x16 ? 'direct TLS negotiation is not supported: connect with sslnegotiation=postgres' : undefined;
      throw protocolError('invalid length of startup packet', hint ?? `the startup packet must be 8 to ${MAX_STARTUP_PACKET_BYTES} bytes; it said ${length}`);
    }
    await this.#need(length);
    return Buffer.from(this.#take(length).subarray(4));
  }

  /** A typed message of at most `maxBytes` (length field included). */
  async readMessage(maxBytes: number): Promise<WireMessage> {
    await this.#need(5);
    const type = this.#buf[0]!;
    const length = this.#buf.readInt32BE(1);
    if (length < 4) throw protocolError('invalid message length', `message type 0x${type.toString(16)} said ${length} bytes`);
    if (length > maxBytes) throw protocolError('message too long', `message type 0x${type.toString(16)} is ${length} bytes; at most ${maxBytes} are allowed here`);
    await this.#need(1 + length);
    const raw = Buffer.from(this.#take(1 + length));
    return { type, body: raw.subarray(5), raw };
  }

  /**
   * Stops reading and returns what was read ahead; the caller now owns the socket's
   * data and its end. Every listener goes, so a relayed socket does not keep this
   * reader (and its closures) for its whole life; `closed` no longer settles.
   */
  detach(): Buffer {
    const socket = this.#socket;
    socket.pause();
    socket.off('data', this.#onData);
    socket.off('end', this.#end);
    socket.off('close', this.#end);
    socket.off('error', this.#onError);
    this.#paused = false;
    const rest = this.#buf;
    this.#buf = EMPTY;
    return rest;
  }
}
