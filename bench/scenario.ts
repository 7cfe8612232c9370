/** A benchmark scenario: runs its systems side by side and returns tables for the report. */
export interface ReportTable {
  title: string;
  columns: string[];
  rows: (string | number)[][];
}

export interface ScenarioResult {
  tables: ReportTable[];
  /** Raw figures for the JSON report. */
  data: Record<string, unknown>;
  notes: string[];
}

export interface ScenarioContext {
  quick: boolean;
  progress(message: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
