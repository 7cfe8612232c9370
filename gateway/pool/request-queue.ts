/**
 * What a server connection still owes: one entry per request sent to it that
 * will be answered, in order (PgBouncer's outstanding requests). Answers are
 * matched to entries as they arrive; the entry's action says whether the
 * answer goes to the client, is the gateway's own to swallow, or was never
 * sent and is answered by the gateway at its place in the pipeline.
 */
export const REQ = {
  parse: 1, // answered by ParseComplete '1'
  bind: 2, // BindComplete '2'
  close: 3, // CloseComplete '3'
  describe: 4, // [ParameterDescription] RowDescription | NoData
  execute: 5, // … CommandComplete | EmptyQueryResponse | PortalSuspended
  sync: 6, // ReadyForQuery
  query: 7, // … ReadyForQuery
  functionCall: 8, // FunctionCallResponse, ReadyForQuery
} as const;
export type RequestKind = (typeof REQ)[keyof typeof REQ];

export const ACTION = {
  /** The client's request: its answer goes to the client. */
  forward: 0,
  /** The gateway's own request (a lazy re-Parse, a SET of the client's parameters): its answer is swallowed. */
  drop: 1,
  /** Answered by the gateway (the statement was already prepared; a Close kept it): never sent to the server. */
  fake: 2,
  /** The gateway's own query whose rows it reads (a reset, a session's settings before a move). */
  collect: 3,
} as const;
export type RequestAction = (typeof ACTION)[keyof typeof ACTION];

const INITIAL = 16;

export class RequestQueue {
  #kinds = new Uint8Array(INITIAL);
  #actions = new Uint8Array(INITIAL);
  /** The server-side statement name of a parse entry (to forget it if the Parse fails), else undefined. */
  #names: (string | undefined)[] = new Array<string | undefined>(INITIAL);
  #head = 0;
  #size = 0;
  /** Sync, Query and FunctionCall entries: each ends with a ReadyForQuery. */
  #syncs = 0;

  get size(): number {
    return this.#size;
  }

  get empty(): boolean {
    return this.#size === 0;
  }

  /** ReadyForQuery messages still to come. */
  get syncs(): number {
    return this.#syncs;
  }

  push(kind: RequestKind, action: RequestAction, name?: string): void {
    if (this.#size === this.#kinds.length) this.#grow();
    const at = (this.#head + this.#size) & (this.#kinds.length - 1);
    this.#kinds[at] = kind;
    this.#actions[at] = action;
    this.#names[at] = name;
    this.#size++;
    if (kind >= REQ.sync) this.#syncs++;
  }

  get headKind(): number {
    return this.#size === 0 ? 0 : this.#kinds[this.#head]!;
  }

  get headAction(): number {
    return this.#size === 0 ? -1 : this.#actions[this.#head]!;
  }

  get headName(): string | undefined {
    return this.#size === 0 ? undefined : this.#names[this.#head];
  }

  shift(): void {
    if (this.#size === 0) return;
    if (this.#kinds[this.#head]! >= REQ.sync) this.#syncs--;
    this.#names[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#kinds.length - 1);
    this.#size--;
  }

  clear(): void {
    while (this.#size > 0) this.shift();
  }

  #grow(): void {
    const n = this.#kinds.length * 2;
    const kinds = new Uint8Array(n);
    const actions = new Uint8Array(n);
    const names = new Array<string | undefined>(n);
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) & (this.#kinds.length - 1);
      kinds[i] = this.#kinds[from]!;
      actions[i] = this.#actions[from]!;
      names[i] = this.#names[from];
    }
    this.#kinds = kinds;
    this.#actions = actions;
    this.#names = names;
    this.#head = 0;
  }
}
