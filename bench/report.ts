import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ReportTable, ScenarioResult } from './scenario.js';

export interface BenchReport {
  startedAt: string;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string };
  scenarios: ({ name: string; title: string; seconds: number } & (ScenarioResult | { error: string }))[];
}

export function machineInfo(): BenchReport['machine'] {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version };
}

function markdownTable(t: ReportTable): string {
  return [`**${t.title}**`, '', `| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function toMarkdown(r: BenchReport): string {
  const parts = [
    `# pgwake benchmark — ${r.startedAt}${r.quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGb} GiB, Node ${r.machine.node}. Figures are medians of repeated runs; the systems compared alternate within each round.`,
  ];
  for (const s of r.scenarios) {
    parts.push('', `## ${s.title}`, '');
    if ('error' in s) {
      parts.push(`Failed: ${s.error}`);
      continue;
    }
    for (const t of s.tables) parts.push(markdownTable(t), '');
    for (const n of s.notes) parts.push(`- ${n}`);
    parts.push('', `_(${s.seconds.toFixed(0)} s)_`);
  }
  return parts.join('\n') + '\n';
}

/** Writes `bench/results/<timestamp>.json` and `.md`; returns their paths. */
export async function writeReport(dir: string, r: BenchReport): Promise<{ json: string; markdown: string }> {
  await mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = path.join(dir, `${stamp}.json`);
  const markdown = path.join(dir, `${stamp}.md`);
  await writeFile(json, JSON.stringify(r, null, 2));
  await writeFile(markdown, toMarkdown(r));
  return { json, markdown };
}
