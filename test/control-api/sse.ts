/** One Server-Sent Events message as a client sees it. */
export interface SseMessage {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/**
 * A real SSE client over fetch: reads the stream, splits it into messages and
 * comments (heartbeats) as the EventSource spec does.
 */
export class SseReader {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  ended = false;
  #waiters: (() => void)[] = [];
  #abort = new AbortController();
  status = 0;
  headers: Headers | undefined;

  static async open(url: string, key: string, lastEventId?: string | number): Promise<SseReader> {
    const reader = new SseReader();
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    const res = await fetch(url, { headers, signal: reader.#abort.signal });
    reader.status = res.status;
    reader.headers = res.headers;
    if (res.body) void reader.#read(res.body);
    return reader;
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    let current: { id?: string; event?: string; data: string[] } = { data: [] };
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          if (line === '') {
            if (current.data.length > 0) this.messages.push({ id: current.id, event: current.event, data: current.data.join('\n') });
            current = { data: [] };
          } else if (line.startsWith(':')) {
            this.comments.push(line.slice(1).trim());
          } else {
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (field === 'id') current.id = value;
            else if (field === 'event') current.event = value;
            else if (field === 'data') current.data.push(value);
          }
          this.#wake();
        }
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `test` holds over what was read so far. */
  async until(test: (r: SseReader) => boolean, timeoutMs = 20_000, what = 'stream condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this)) {
      if (this.ended) throw new Error(`stream ended before ${what}; got ${JSON.stringify(this.messages.map((m) => m.event))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.event))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Events as parsed JSON data. */
  events(): { id: number; type: string; tenant_id: string | null; db_id: string | null; data: any }[] {
    return this.messages.map((m) => JSON.parse(m.data));
  }

  close(): void {
    this.#abort.abort();
  }
}
