import { describe, expect, it } from 'vitest';
import { IN_PROCESS, REDIS, throughputRows, wakeRows, workersName } from '../../bench/scenarios/scale-out.js';
import type { PgbenchRun } from '../../bench/tools/pgbench.js';

const run = (tps: number, failed = 0): PgbenchRun => ({ tps, transactions: tps, latencyMs: 1, failed });

describe('scale-out figures', () => {
  it('takes the 2-worker ÷ 1-worker ratio within each round, with the failed transactions of both', () => {
    const runs = new Map([
      [workersName(1), [run(1000), run(1200), run(800)]],
      [workersName(2), [run(1500), run(1200, 2), run(1600)]],
    ]);
    const { rows, ratios } = throughputRows([{ cell: { clients: 50, mode: 'transaction' }, runs }]);
    // Per-round ratios 1.5, 1.0, 2.0: median 1.5; the medians' ratio (1500 / 1000) would hide the spread.
    expect(rows).toEqual([[50, 'transaction', '1000 (800–1200)', '1500 (1200–1600)', '1.50 (1.00–2.00)', 2]]);
    expect(ratios).toHaveLength(1);
    expect(ratios[0]).toMatchObject({ measure: 'TPS, pgbench -S -c 50, transaction mode', system: '2 gateway workers', baseline: '1 gateway worker', better: 'higher' });
    expect(ratios[0]!.ratio.runs).toEqual([1.5, 1, 2]);
  });

  it('compares wakes per alternating pair at p50 and over all wakes at p99, Redis over in-process', () => {
    const redis = [40, 50, 60, 45, 200];
    const local = [40, 40, 40, 50, 100];
    const { rows, ratios } = wakeRows(redis, local);
    expect(rows).toEqual([
      [REDIS, 5, 50, 200, 200, 200],
      [IN_PROCESS, 5, 40, 100, 100, 100],
    ]);
    expect(ratios.map((r) => [r.measure, r.system, r.baseline, r.better])).toEqual([
      ['wake (connect to first row, db suspended): p50', REDIS, IN_PROCESS, 'lower'],
      ['wake (connect to first row, db suspended): p99 over 5 wakes', REDIS, IN_PROCESS, 'lower'],
    ]);
    expect(ratios[0]!.ratio.median).toBeCloseTo(1.25); // pairs 1, 1.25, 1.5, 0.9, 2
    expect(ratios[1]!.ratio.median).toBe(2);
  });
});
