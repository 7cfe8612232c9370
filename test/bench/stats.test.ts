import { describe, expect, it } from 'vitest';
import { roundOrder, runAlternating } from '../../bench/alternation.js';
import { cdfPoints, formatRatio, formatSpread, median, percentile, ratioSpread, spread } from '../../bench/stats.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const s = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(s, 50)).toBe(5);
    expect(percentile(s, 90)).toBe(9);
    expect(percentile(s, 99)).toBe(10);
    expect(median([3])).toBe(3);
    expect(percentile([], 50)).toBeNaN();
  });

  it('takes ratios within a round, so a slow round slows both sides alike', () => {
    // Round 2 ran on a busy machine: both systems halved, the ratio did not move.
    const r = ratioSpread([900, 450, 880], [1000, 500, 1000]);
    expect(r.runs).toEqual([0.9, 0.9, 0.88]);
    expect(r.median).toBe(0.9);
    expect(r.min).toBe(0.88);
    expect(r.max).toBe(0.9);
    expect(formatRatio(r)).toBe('0.90 (0.88–0.90)');
  });

  it('says n/a for a ratio with nothing to divide by', () => {
    const r = ratioSpread([1, 2], [0, 0]);
    expect(r.median).toBeNaN();
    expect(formatRatio(r)).toBe('n/a');
  });

  it('formats a spread as median (min–max), and a single run alone', () => {
    expect(formatSpread(spread([10.4, 12.6, 11]))).toBe('11 (10–13)');
    expect(formatSpread(spread([3.14159]), 2)).toBe('3.14');
  });

  it('draws an empirical CDF that ends at 1, thinned to the points asked for', () => {
    expect(cdfPoints([3, 1, 2, 4])).toEqual([
      [1, 0.25],
      [2, 0.5],
      [3, 0.75],
      [4, 1],
    ]);
    const many = cdfPoints(Array.from({ length: 1000 }, (_, i) => i), 100);
    expect(many.length).toBeLessThanOrEqual(101);
    expect(many[many.length - 1]).toEqual([999, 1]);
    expect(many.every(([, y], i) => i === 0 || y >= many[i - 1]![1])).toBe(true);
    expect(cdfPoints([])).toEqual([]);
  });
});

describe('alternating rounds', () => {
  it('rotates the order from round to round so no system always goes first', () => {
    expect([0, 1, 2, 3].map((r) => roundOrder(['a', 'b', 'c'], r).join(''))).toEqual(['abc', 'bca', 'cab', 'abc']);
  });

  it('runs every system once per round and keys results by system', async () => {
    const calls: string[] = [];
    const results = await runAlternating([{ name: 'x' }, { name: 'y' }], 3, async (s, round) => {
      calls.push(`${s.name}${round}`);
      return round * 10 + (s.name === 'x' ? 1 : 2);
    });
    expect(calls).toEqual(['x0', 'y0', 'y1', 'x1', 'x2', 'y2']);
    expect(results.get('x')).toEqual([1, 11, 21]);
    expect(results.get('y')).toEqual([2, 12, 22]);
  });
});
