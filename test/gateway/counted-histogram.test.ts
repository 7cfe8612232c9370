import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountedHistogram } from '../../gateway/counted-histogram.js';

describe('CountedHistogram', () => {
  it("scrapes exactly as prom-client's own histogram given the same observations, and resets", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const buckets = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];
    const reference = new Histogram({ name: 'pgwake_test_wait_seconds', help: 'a wait', buckets, registers: [theirs] });
    const counted = new CountedHistogram('pgwake_test_wait_seconds', 'a wait', buckets, [ours]);
    // On a bound, between bounds, below the first and above the last.
    for (const v of [0, 0.0001, 0.00011, 0.001, 0.0015, 0.05, 0.3, 3, 30, 45]) {
      reference.observe(v);
      counted.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('pgwake_test_wait_seconds_bucket{le="0.0001"} 2');
    expect(await ours.metrics()).toContain('pgwake_test_wait_seconds_count 10');
    ours.resetMetrics();
    theirs.resetMetrics();
    reference.zero({});
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
