import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderProgressLine } from '../../bench/progress.js';
import { chartFile, ratiosTable, toMarkdown, writeReport, type BenchReport } from '../../bench/report.js';
import { spread } from '../../bench/stats.js';

function sampleReport(): BenchReport {
  return {
    startedAt: '2026-11-24T07:00:00.000Z',
    quick: true,
    machine: { cpus: 2, cpuModel: 'Test CPU', memoryGb: 8, node: 'v20.0.0' },
    command: 'npm run bench -- --quick',
    wallSeconds: 118.4,
    environment: ['pgbench 15; PgBouncer 1.18.0.'],
    scenarios: [
      {
        name: 'throughput',
        title: 'Throughput',
        seconds: 30,
        tables: [{ title: 'TPS', columns: ['system', 'tps'], rows: [['direct | raw', 1000], ['pgwake', 950]] }],
        data: {},
        notes: ['a note'],
        charts: [{ id: 'latency c20', title: 'Latency', xLabel: 'ms', yLabel: 'fraction', series: [{ name: 'pgwake', points: [[1, 0.5], [2, 1]] }] }],
        ratios: [{ measure: 'TPS', system: 'pgwake', baseline: 'direct Postgres', ratio: spread([0.95, 0.9, 0.97]), better: 'higher' }],
      },
      { name: 'wake', title: 'Wake', seconds: 3, error: 'pgwake exited (1)' },
    ],
  };
}

describe('bench report', () => {
  it('puts every scenario\'s headline ratios in one summary table', () => {
    const t = ratiosTable(sampleReport())!;
    expect(t.rows).toEqual([['throughput', 'TPS', 'pgwake ÷ direct Postgres', '0.95 (0.90–0.97)', 'higher is better']]);
  });

  it('renders tables, chart links, notes, failures and the run itself in Markdown', () => {
    const md = toMarkdown(sampleReport());
    expect(md).toContain('# pgwake benchmark — 2026-11-24T07:00:00.000Z (quick)');
    expect(md).toContain('Wall time 118 s. Run with `npm run bench -- --quick`.');
    expect(md).toContain('| throughput | TPS | pgwake ÷ direct Postgres | 0.95 (0.90–0.97) | higher is better |');
    expect(md).toContain('| direct \\| raw | 1000 |'); // a pipe in a cell does not split it
    expect(md).toContain('![Latency](2026-11-24T07-00-00-000Z/throughput-latency_c20.svg)');
    expect(md).toContain('- a note');
    expect(md).toContain('## Wake\n\nFailed: pgwake exited (1)');
  });

  it('writes the JSON, the Markdown and one SVG per chart', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pgwake-report-test-'));
    try {
      const r = sampleReport();
      const files = await writeReport(dir, r);
      expect(JSON.parse(await readFile(files.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(r)));
      expect(await readFile(files.markdown, 'utf8')).toBe(toMarkdown(r));
      expect(await readdir(path.join(dir, '2026-11-24T07-00-00-000Z'))).toEqual([chartFile('throughput', 'latency c20')]);
      expect(await readFile(files.charts[0]!, 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('progress line', () => {
  it('shows the whole run\'s share done, the scenario and its step', () => {
    const line = renderProgressLine({ index: 1, total: 4, scenario: 'wake', message: 'wake 3/15', fraction: 0.5, elapsedMs: 65_000 });
    expect(line).toBe('[#########---------------]  38% 2/4 wake: wake 3/15  1:05');
    expect(renderProgressLine({ index: 3, total: 4, scenario: 'x', message: 'y', fraction: 1, elapsedMs: 0 })).toMatch(/^\[#{24}\] 100% /);
  });
});
