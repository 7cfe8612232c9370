import { createHash } from 'node:crypto';

/**
 * Protocol-level prepared statements over shared server connections (transaction
 * mode). A client's statement name maps to a server-side name made from the
 * statement's content (query text and parameter types), so two clients preparing
 * the same statement share it on a server and names never collide. Each server
 * keeps a bounded LRU of what it has prepared; a Bind on a server that lacks the
 * statement is preceded by the client's Parse, re-sent under the server name.
 */

/** Statements one server keeps prepared before the least recently used is closed. */
export const SERVER_STATEMENTS_MAX = 256;
const NAME_PREFIX = 'pgw_';

export interface ClientStatement {
  serverName: string;
  /** The client's Parse, renamed to `serverName`: sent again wherever the statement is missing. */
  parse: Buffer;
  /** Whether running it may leave session state behind (SET, LISTEN, …): the server is reset after. */
  touchesSession: boolean;
}

/** A client's statements by the names it gave them. */
export class ClientStatements {
  /** Made at the first named statement: most clients never prepare one. */
  #byName: Map<string, ClientStatement> | null = null;

  get(name: string): ClientStatement | undefined {
    return this.#byName?.get(name);
  }

  set(name: string, statement: ClientStatement): void {
    (this.#byName ??= new Map()).set(name, statement);
  }

  delete(name: string): void {
    this.#byName?.delete(name);
  }

  clear(): void {
    this.#byName?.clear();
  }

  get size(): number {
    return this.#byName?.size ?? 0;
  }
}

/** What one server connection has prepared, least recently used first; each with whether the server said ParseComplete yet. */
export class ServerStatements {
  readonly #names = new Map<string, boolean>();

  constructor(private readonly max = SERVER_STATEMENTS_MAX) {}

  /** Prepared there, or its Parse on its way (an error would delete it). */
  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** Prepared there and answered with ParseComplete: the statement is known to be good. */
  confirmed(name: string): boolean {
    return this.#names.get(name) === true;
  }

  confirm(name: string): void {
    if (this.#names.has(name)) this.#names.set(name, true);
  }

  touch(name: string): void {
    const confirmed = this.#names.get(name);
    if (confirmed !== undefined && this.#names.delete(name)) this.#names.set(name, confirmed);
  }

  /** Records `name` as prepared (not yet confirmed); returns the names evicted to make room (to Close on the server). */
  add(name: string): string[] {
    const confirmed = this.#names.get(name) ?? false;
    this.#names.delete(name);
    this.#names.set(name, confirmed);
    if (this.#names.size <= this.max) return [];
    const evicted: string[] = [];
    for (const oldest of this.#names.keys()) {
      if (this.#names.size <= this.max) break;
      if (oldest === name) continue;
      this.#names.delete(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }

  delete(name: string): void {
    this.#names.delete(name);
  }

  clear(): void {
    this.#names.clear();
  }

  get size(): number {
    return this.#names.size;
  }
}

/** A Parse message's fields: `buf[start, end)` is the whole message, type byte included. */
export interface ParsedParse {
  name: string;
  /** Offset of the query text (what follows the name): query, parameter types. */
  contentStart: number;
  queryEnd: number;
}

export function readParse(buf: Buffer, start: number, end: number): ParsedParse {
  const nameEnd = buf.indexOf(0, start + 5);
  const queryEnd = nameEnd < 0 || nameEnd >= end ? -1 : buf.indexOf(0, nameEnd + 1);
  if (nameEnd < 0 || queryEnd < 0 || queryEnd >= end) throw new Error('malformed Parse message');
  return { name: buf.toString('utf8', start + 5, nameEnd), contentStart: nameEnd + 1, queryEnd };
}

/** The server-side name of a statement: a digest of its query text and parameter types. */
export function serverNameOf(buf: Buffer, contentStart: number, end: number): string {
  return NAME_PREFIX + createHash('sha256').update(buf.subarray(contentStart, end)).digest('hex').slice(0, 40);
}

/** The client's Parse with its statement named `serverName`. */
export function renamedParse(buf: Buffer, contentStart: number, end: number, serverName: string): Buffer {
  const name = Buffer.from(serverName + '\0', 'utf8');
  const out = Buffer.allocUnsafe(5 + name.length + (end - contentStart));
  out[0] = 0x50; // 'P'
  out.writeInt32BE(out.length - 1, 1);
  name.copy(out, 5);
  buf.copy(out, 5 + name.length, contentStart, end);
  return out;
}

/** Bind: portal name, statement name, then the rest. Returns the statement name and where it sits. */
export function readBind(buf: Buffer, start: number, end: number): { statement: string; statementStart: number; statementEnd: number } {
  const portalEnd = buf.indexOf(0, start + 5);
  const statementEnd = portalEnd < 0 || portalEnd >= end ? -1 : buf.indexOf(0, portalEnd + 1);
  if (portalEnd < 0 || statementEnd < 0 || statementEnd >= end) throw new Error('malformed Bind message');
  return { statement: buf.toString('utf8', portalEnd + 1, statementEnd), statementStart: portalEnd + 1, statementEnd };
}

/** The message `buf[start, end)` with the name at `[nameStart, nameEnd)` replaced by `serverName`. */
export function renamed(buf: Buffer, start: number, end: number, nameStart: number, nameEnd: number, serverName: string): Buffer {
  const name = Buffer.from(serverName, 'utf8');
  const out = Buffer.allocUnsafe(end - start - (nameEnd - nameStart) + name.length);
  buf.copy(out, 0, start, nameStart);
  name.copy(out, nameStart - start);
  buf.copy(out, nameStart - start + name.length, nameEnd, end);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** Describe and Close: a kind byte ('S' statement, 'P' portal) and a name. */
export function readTarget(buf: Buffer, start: number, end: number): { kind: number; name: string; nameStart: number; nameEnd: number } {
  const nameEnd = buf.indexOf(0, start + 6);
  if (nameEnd < 0 || nameEnd >= end) throw new Error('malformed Describe or Close message');
  return { kind: buf[start + 5]!, name: buf.toString('utf8', start + 6, nameEnd), nameStart: start + 6, nameEnd };
}

/** Close of a statement the gateway prepared on a server (an LRU eviction). */
export function closeStatement(serverName: string): Buffer {
  const name = Buffer.from(serverName + '\0', 'utf8');
  const out = Buffer.allocUnsafe(6 + name.length);
  out[0] = 0x43; // 'C'
  out.writeInt32BE(out.length - 1, 1);
  out[5] = 0x53; // 'S'
  name.copy(out, 6);
  return out;
}
