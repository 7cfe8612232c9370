import type { AccountStore, Logger } from '../core/index.js';

/**
 * Remembers which API keys were used and writes `last_used_at` for all of them
 * at once every `intervalMs`: one catalog write per interval, not one per request.
 */
export class KeyUseLog {
  #used = new Set<string>();
  #timer: NodeJS.Timeout;

  constructor(private readonly accounts: AccountStore, private readonly logger: Logger, intervalMs: number) {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  record(keyId: string): void {
    this.#used.add(keyId);
  }

  async flush(): Promise<void> {
    if (this.#used.size === 0) return;
    const ids = [...this.#used];
    this.#used.clear();
    try {
      await this.accounts.touchKeys(ids);
    } catch (err) {
      // Keep them for the next flush: a missed touch is harmless, a lost one is not.
      for (const id of ids) this.#used.add(id);
      this.logger.warn({ err }, 'could not record API key use');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
