/**
 * Where the bench is: a redrawn bar on a terminal, plain lines (at most one every
 * few seconds) when the output is a file or a CI log.
 */
export interface ProgressState {
  index: number;
  total: number;
  scenario: string;
  message: string;
  /** Of the current scenario, 0–1, when it knows. */
  fraction?: number;
  elapsedMs: number;
}

const BAR_WIDTH = 24;
const PLAIN_EVERY_MS = 3000;

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** "[#########---------------]  38% 2/5 wake: storm 2/3  0:41" */
export function renderProgressLine(p: ProgressState): string {
  const within = Math.min(1, Math.max(0, p.fraction ?? 0));
  const overall = p.total === 0 ? 1 : (p.index + within) / p.total;
  const filled = Math.round(overall * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  return `${bar} ${String(Math.round(overall * 100)).padStart(3)}% ${p.index + 1}/${p.total} ${p.scenario}: ${p.message}  ${clock(p.elapsedMs)}`;
}

export class ProgressDisplay {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #t0 = performance.now();
  #state: Omit<ProgressState, 'elapsedMs'> | undefined;
  #lastPlain = 0;
  #lastMessage = '';
  #flush: NodeJS.Timeout | undefined;

  constructor(out: NodeJS.WriteStream, readonly total: number) {
    this.#out = out;
    this.#tty = Boolean(out.isTTY) && process.env.TERM !== 'dumb';
  }

  update(index: number, scenario: string, message: string, fraction?: number): void {
    this.#state = { index, total: this.total, scenario, message, fraction };
    const elapsedMs = performance.now() - this.#t0;
    if (this.#tty) {
      const line = renderProgressLine({ ...this.#state, elapsedMs });
      const columns = this.#out.columns ?? 100;
      this.#out.write(`\r\x1b[K${line.slice(0, columns - 1)}`);
    } else if (message !== this.#lastMessage) {
      const wait = this.#lastPlain + PLAIN_EVERY_MS - elapsedMs;
      if (wait <= 0) this.#printPlain();
      // A step held back by the throttle still shows if it turns out to be a long one.
      else this.#flush ??= setTimeout(() => this.#printPlain(), wait).unref();
    }
  }

  #printPlain(): void {
    if (this.#flush) clearTimeout(this.#flush);
    this.#flush = undefined;
    const s = this.#state;
    if (!s || s.message === this.#lastMessage) return;
    const elapsedMs = performance.now() - this.#t0;
    this.#lastPlain = elapsedMs;
    this.#lastMessage = s.message;
    this.#out.write(`[${s.index + 1}/${this.total}] ${s.scenario}: ${s.message} (${clock(elapsedMs)})\n`);
  }

  /** A line that stays (a scenario finished), the bar redrawn below it. */
  log(line: string): void {
    if (this.#tty) this.#out.write('\r\x1b[K');
    this.#out.write(`${line}\n`);
  }

  clear(): void {
    if (this.#flush) clearTimeout(this.#flush);
    this.#flush = undefined;
    if (this.#tty) this.#out.write('\r\x1b[K');
  }
}
