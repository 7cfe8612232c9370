import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { renderLineChart } from './charts/index.js';
import type { ReportTable, ScenarioResult } from './scenario.js';
import { formatRatio } from './stats.js';

export interface BenchReport {
  startedAt: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string };
  /** How it was run, e.g. `npm run bench -- --quick`. */
  command?: string;
  wallSeconds?: number;
  /** Facts about the run that apply to every scenario (tool versions, limits). */
  environment?: string[];
  scenarios: ({ name: string; title: string; seconds: number } & (ScenarioResult | { error: string }))[];
}

export function machineInfo(): BenchReport['machine'] {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version };
}

/** File stem of a report: its start time, safe in a file name. */
export function reportStamp(r: BenchReport): string {
  return r.startedAt.replace(/[:.]/g, '-');
}

const cell = (v: string | number) => String(v).replace(/\|/g, '\\|');

function markdownTable(t: ReportTable): string {
  return [`**${t.title}**`, '', `| ${t.columns.map(cell).join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** The headline ratios of every scenario, one row each: what the README quotes. */
export function ratiosTable(r: BenchReport): ReportTable | undefined {
  const rows: (string | number)[][] = [];
  for (const s of r.scenarios) {
    if ('error' in s) continue;
    for (const h of s.ratios ?? []) rows.push([s.name, h.measure, `${h.system} ÷ ${h.baseline}`, formatRatio(h.ratio), h.better === 'higher' ? 'higher is better' : 'lower is better']);
  }
  if (rows.length === 0) return undefined;
  return { title: 'Ratios (median of per-round ratios; min–max over the rounds)', columns: ['scenario', 'measure', 'ratio of', 'ratio', ''], rows };
}

export function chartFile(scenario: string, chartId: string): string {
  return `${scenario}-${chartId}.svg`.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function toMarkdown(r: BenchReport): string {
  const stamp = reportStamp(r);
  const parts = [
    `# pgwake benchmark — ${r.startedAt}${r.quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGb} GiB, Node ${r.machine.node}.` +
      (r.wallSeconds !== undefined ? ` Wall time ${r.wallSeconds.toFixed(0)} s.` : '') +
      (r.command ? ` Run with \`${r.command}\`.` : ''),
    '',
    'Figures are medians of repeated runs with min and max; the systems compared alternate within each round (the order rotating from round to round), and ratios are taken within a round.',
  ];
  for (const e of r.environment ?? []) parts.push(`- ${e}`);
  const summary = ratiosTable(r);
  if (summary) parts.push('', '## Summary', '', markdownTable(summary));
  for (const s of r.scenarios) {
    parts.push('', `## ${s.title}`, '');
    if ('error' in s) {
      parts.push(`Failed: ${s.error}`, '', `_(${s.seconds.toFixed(0)} s)_`);
      continue;
    }
    for (const t of s.tables) parts.push(markdownTable(t), '');
    for (const c of s.charts ?? []) parts.push(`![${c.title}](${stamp}/${chartFile(s.name, c.id)})`, '');
    for (const n of s.notes) parts.push(`- ${n}`);
    parts.push('', `_(${s.seconds.toFixed(0)} s)_`);
  }
  return parts.join('\n') + '\n';
}

/** Writes `<dir>/<stamp>.json`, `<dir>/<stamp>.md` and the charts under `<dir>/<stamp>/`; returns the paths. */
export async function writeReport(dir: string, r: BenchReport): Promise<{ json: string; markdown: string; charts: string[] }> {
  const stamp = reportStamp(r);
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, `${stamp}.json`);
  const markdown = path.join(dir, `${stamp}.md`);
  const charts: string[] = [];
  for (const s of r.scenarios) {
    if ('error' in s) continue;
    for (const c of s.charts ?? []) {
      await mkdir(path.join(dir, stamp), { recursive: true });
      const file = path.join(dir, stamp, chartFile(s.name, c.id));
      await writeFile(file, renderLineChart(c));
      charts.push(file);
    }
  }
  await writeFile(json, JSON.stringify(r, null, 2));
  await writeFile(markdown, toMarkdown(r));
  return { json, markdown, charts };
}
