import type { LineChart } from './charts/index.js';
import type { Spread } from './stats.js';

/** A benchmark scenario: runs its systems side by side and returns tables for the report. */
export interface ReportTable {
  title: string;
  columns: string[];
  rows: (string | number)[][];
}

/** One headline comparison for the report's summary (and the README): `system` against `baseline`. */
export interface HeadlineRatio {
  measure: string;
  system: string;
  baseline: string;
  /** Per-round ratios system / baseline: median, min, max. */
  ratio: Spread;
  /** Whether a ratio above 1 is good for `system` (throughput) or bad (latency, memory). */
  better: 'higher' | 'lower';
}

export interface ScenarioResult {
  tables: ReportTable[];
  /** Raw figures for the JSON report. */
  data: Record<string, unknown>;
  notes: string[];
  /** Drawn as SVG files beside the Markdown report. */
  charts?: LineChart[];
  ratios?: HeadlineRatio[];
}

export interface ScenarioContext {
  quick: boolean;
  /** What the scenario is doing now; `fraction` (0–1) of the scenario done, when it knows. */
  progress(message: string, fraction?: number): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Keys of the `shared` servers it uses: kept running from the scenario before when it used them too. */
  shares?: string[];
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
