import { describe, expect, it } from 'vitest';
import { linearTicks, logTicks, renderLineChart, tickLabel, type LineChart } from '../../bench/charts/index.js';

const paths = (svg: string) => [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);

describe('chart ticks', () => {
  it('steps by 1, 2 or 5 × 10ⁿ', () => {
    expect(linearTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(linearTicks(0, 23_000)).toEqual([0, 5000, 10000, 15000, 20000]);
    expect(linearTicks(3, 3)).toEqual([3]);
  });

  it('puts decades on a log axis, with 2 and 5 between when the range is short', () => {
    expect(logTicks(0.05, 400)).toEqual([0.1, 1, 10, 100]);
    expect(logTicks(3, 80)).toEqual([5, 10, 20, 50]);
    expect(logTicks(0, 10)).toEqual([]);
  });

  it('labels ticks briefly', () => {
    expect([0.25, 15, 1500, 2_000_000].map(tickLabel)).toEqual(['0.25', '15', '1.5k', '2M']);
  });
});

describe('line chart', () => {
  const chart: LineChart = {
    id: 'tps',
    title: 'TPS <across> a handoff & back',
    xLabel: 's',
    yLabel: 'tps',
    series: [
      { name: 'pgwake', points: [[0, 100], [1, 50], [2, 100]] },
      { name: 'direct', points: [[0, 120], [1, 120], [2, 120]] },
    ],
    markers: [{ x: 1, label: 'handoff' }],
  };

  it('draws one path per series within the plot, a legend entry each, and escapes text', () => {
    const svg = renderLineChart(chart);
    expect(paths(svg)).toHaveLength(2);
    expect(svg).toContain('TPS &lt;across&gt; a handoff &amp; back');
    expect(svg).toContain('>pgwake</text>');
    expect(svg).toContain('>direct</text>');
    expect(svg).toContain('>handoff</text>');
    // Every coordinate lies inside the SVG's box.
    for (const d of paths(svg)) {
      for (const [x, y] of [...d.matchAll(/(-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])])) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(780);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(380);
      }
    }
  });

  it('draws higher values higher up, and a dip as a dip', () => {
    const [ours] = paths(renderLineChart(chart));
    const ys = [...ours!.matchAll(/[\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    expect(ys[1]).toBeGreaterThan(ys[0]!); // 50 tps sits below 100 tps: a larger SVG y
    expect(ys[2]).toBe(ys[0]);
  });

  it('draws a CDF as a staircase and leaves out points a log axis cannot show', () => {
    const svg = renderLineChart({ id: 'cdf', title: 'cdf', xLabel: 'ms', yLabel: 'fraction', xScale: 'log', shape: 'step', series: [{ name: 'a', points: [[0, 0.1], [1, 0.5], [10, 1]] }] });
    const [d] = paths(svg);
    expect(d).toMatch(/^M[\d.]+,[\d.]+ H[\d.]+ V[\d.]+ H[\d.]+ V[\d.]+$/);
  });

  it('still renders with no points at all', () => {
    expect(renderLineChart({ ...chart, series: [{ name: 'empty', points: [] }] })).toContain('</svg>');
  });
});

describe('chart title', () => {
  it('wraps a long title onto a second line and cuts a third with an ellipsis', () => {
    const titles = (t: string) => [...renderLineChart({ id: 'x', title: t, xLabel: 'x', yLabel: 'y', series: [] }).matchAll(/font-weight="bold">([^<]*)</g)].map((m) => m[1]!);
    expect(titles('short')).toEqual(['short']);
    const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const two = titles(long.slice(0, 150));
    expect(two).toHaveLength(2);
    expect(two.join(' ')).toBe(long.slice(0, 150));
    const cut = titles(`${long} ${long}`);
    expect(cut).toHaveLength(2);
    expect(cut[1]!.endsWith('…')).toBe(true);
  });
});
