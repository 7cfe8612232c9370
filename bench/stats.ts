/** Order statistics for latency samples: medians and percentiles, never means of noisy runs. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(runs: number[]): Spread {
  return { median: median(runs), min: Math.min(...runs), max: Math.max(...runs), runs };
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Per-round ratios a[i] / b[i]: both figures come from the same round, so drift between rounds cancels. */
export function ratioSpread(a: readonly number[], b: readonly number[]): Spread {
  const n = Math.min(a.length, b.length);
  const runs: number[] = [];
  for (let i = 0; i < n; i++) if (b[i]! > 0 && Number.isFinite(a[i]!)) runs.push(a[i]! / b[i]!);
  return runs.length === 0 ? { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs } : spread(runs);
}

/** "0.93 (0.88–0.97)": a ratio's median with its min and max over the rounds. */
export function formatRatio(s: Spread, digits = 2): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  return s.runs.length > 1 ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : s.median.toFixed(digits);
}

/** "1234 (1100–1300)": a figure's median with min and max. */
export function formatSpread(s: Spread, digits = 0): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  const f = (n: number) => round(n, digits).toString();
  return s.runs.length > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}

/** Empirical CDF as (value, fraction ≤ value) points, thinned to at most `maxPoints`. */
export function cdfPoints(samples: readonly number[], maxPoints = 200): [number, number][] {
  const sorted = [...samples].filter(Number.isFinite).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return [];
  const step = Math.max(1, Math.ceil(n / maxPoints));
  const points: [number, number][] = [];
  for (let i = 0; i < n; i += step) points.push([sorted[i]!, (i + 1) / n]);
  if (points[points.length - 1]![1] !== 1) points.push([sorted[n - 1]!, 1]);
  return points;
}
