import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineInfo, toMarkdown, writeReport, type BenchReport } from './report.js';
import type { Scenario } from './scenario.js';
import { throughputScenario } from './scenarios/throughput.js';
import { wakeScenario } from './scenarios/wake.js';

const SCENARIOS: Scenario[] = [wakeScenario, throughputScenario];
const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** `pgwake bench [--quick] [scenario…]`: runs the scenarios and writes a JSON and a Markdown report. */
export async function runBench(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  const report: BenchReport = { startedAt: new Date().toISOString(), quick, machine: machineInfo(), scenarios: [] };
  for (const [i, scenario] of chosen.entries()) {
    const t0 = performance.now();
    const progress = (message: string) => {
      if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K[${i + 1}/${chosen.length}] ${scenario.name}: ${message}`);
    };
    progress('starting');
    try {
      const result = await scenario.run({ quick, progress });
      report.scenarios.push({ name: scenario.name, title: scenario.title, seconds: (performance.now() - t0) / 1000, ...result });
    } catch (err) {
      report.scenarios.push({ name: scenario.name, title: scenario.title, seconds: (performance.now() - t0) / 1000, error: (err as Error).message });
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    console.error(`[${i + 1}/${chosen.length}] ${scenario.name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const files = await writeReport(RESULTS_DIR, report);
  console.log(toMarkdown(report));
  console.log(`report: ${files.markdown}\nraw:    ${files.json}`);
  return report.scenarios.some((s) => 'error' in s) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runBench(process.argv.slice(2)).then((code) => process.exit(code));
}
