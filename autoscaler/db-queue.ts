interface Lane {
  key: string;
  result: Promise<unknown>;
  /** `result` with its failure swallowed: what the next action waits for. */
  settled: Promise<void>;
}

/**
 * Actions on one db run one after another, never overlapping: a wake that arrives
 * while the db is suspending waits for the suspend and then starts it. An action
 * that is the same as the last one queued for the db joins it instead of queueing
 * again (fifty wakes, one start).
 */
export class DbQueue {
  #lanes = new Map<string, Lane>();

  run<T>(dbId: string, key: string, fn: () => Promise<T>): Promise<T> {
    const last = this.#lanes.get(dbId);
    if (last && last.key === key) return last.result as Promise<T>;
    const result = (last?.settled ?? Promise.resolve()).then(fn);
    const lane: Lane = { key, result, settled: result.then(() => undefined, () => undefined) };
    this.#lanes.set(dbId, lane);
    void lane.settled.then(() => {
      if (this.#lanes.get(dbId) === lane) this.#lanes.delete(dbId);
    });
    return result;
  }

  /** Something is running or queued for the db. */
  busy(dbId: string): boolean {
    return this.#lanes.has(dbId);
  }

  /** Resolves once nothing is running or queued for any db. */
  async drain(): Promise<void> {
    while (this.#lanes.size > 0) await Promise.all([...this.#lanes.values()].map((l) => l.settled));
  }
}
