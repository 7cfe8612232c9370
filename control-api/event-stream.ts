import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { CatalogEvent, RoleContext, Unsubscribe } from '../core/index.js';

/** How many catalog events one read fetches while a stream catches up. */
const PAGE = 500;

/**
 * One Server-Sent Events connection: replays the account's events after its
 * cursor from the catalog, then follows new ones. The coordinator only says
 * "something was appended"; the catalog is the source, so nothing is missed or
 * sent twice, and `Last-Event-ID` (the catalog event id) resumes exactly.
 */
export class EventStream {
  #cursor: number;
  #pumping = false;
  #again = false;
  #closed = false;
  #unsubscribe: Unsubscribe | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: RoleContext,
    private readonly accountId: string,
    after: number,
    private readonly res: ServerResponse,
    private readonly logger: FastifyBaseLogger,
    private readonly onClose: (s: EventStream) => void,
  ) {
    this.#cursor = after;
  }

  start(heartbeatMs: number): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // proxies must not buffer a stream
    });
    this.res.write(`retry: 2000\n: stream of account events after ${this.#cursor}\n\n`);
    this.res.on('close', () => this.close());
    this.#unsubscribe = this.ctx.coordinator.onEventAppended((e) => {
      if (e.accountId === this.accountId && e.eventId > this.#cursor) void this.#pump();
    });
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n'), heartbeatMs);
    void this.#pump();
  }

  /** Reads and sends until caught up; a wake-up during a read runs one more round. */
  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        let page: CatalogEvent[];
        do {
          if (this.#closed) return;
          page = await this.ctx.catalog.events.since(this.accountId, this.#cursor, PAGE);
          for (const e of page) {
            if (this.#closed) return;
            this.#cursor = e.id;
            if (!this.#write(formatEvent(e))) await this.#drained();
          }
        } while (page.length === PAGE);
      } while (this.#again);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'event stream failed; closing it');
      this.close();
    } finally {
      this.#pumping = false;
    }
  }

  #write(chunk: string): boolean {
    if (this.#closed || this.res.writableEnded) return true;
    return this.res.write(chunk);
  }

  /** Waits until the client has taken what was written, or has gone. */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    clearInterval(this.#heartbeat);
    if (!this.res.writableEnded) this.res.end();
    this.onClose(this);
  }
}

/** An SSE message: the id is the catalog event id, the event name its type, the data the event as JSON. */
export function formatEvent(e: CatalogEvent): string {
  const body = { id: e.id, type: e.type, tenant_id: e.tenant_id, db_id: e.db_id, created_at: e.created_at, data: e.data };
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(body)}\n\n`;
}
