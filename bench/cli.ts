import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeEnvironment } from './environment.js';
import { stopAllChildren } from './fixtures/children.js';
import { releaseShared } from './fixtures/shared.js';
import { ProgressDisplay } from './progress.js';
import { machineInfo, toMarkdown, writeReport, type BenchReport } from './report.js';
import type { Scenario } from './scenario.js';
import { connectionRateScenario } from './scenarios/connection-rate.js';
import { handoffScenario } from './scenarios/handoff.js';
import { idleConnectionsScenario } from './scenarios/idle-connections.js';
import { poolingScenario } from './scenarios/pooling.js';
import { scaleOutScenario } from './scenarios/scale-out.js';
import { throughputScenario } from './scenarios/throughput.js';
import { wakeScenario } from './scenarios/wake.js';

// Neighbours share servers (`shares`): wake and scale-out one `pgwake start`; throughput, connection-rate and pooling one pgwake with its computes and PgBouncers.
const SCENARIOS: Scenario[] = [wakeScenario, scaleOutScenario, throughputScenario, connectionRateScenario, poolingScenario, idleConnectionsScenario, handoffScenario];
const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** `pgwake bench [--quick] [scenario…]`: runs the scenarios and writes a JSON and a Markdown report. */
export async function runBench(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const unknownFlags = argv.filter((a) => a.startsWith('--') && a !== '--quick');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0 || unknownFlags.length > 0) {
    console.error(`unknown ${unknown.length > 0 ? `scenario(s): ${unknown.join(', ')}` : `option(s): ${unknownFlags.join(', ')}`}\nusage: pgwake bench [--quick] [scenario…]; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  const t0 = performance.now();
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    command: process.env.npm_lifecycle_event === 'bench' ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `pgwake bench${argv.length ? ` ${argv.join(' ')}` : ''}`,
    environment: await describeEnvironment(),
    scenarios: [],
  };
  const display = new ProgressDisplay(process.stderr, chosen.length);
  const interrupt = (signal: NodeJS.Signals) => {
    display.log(`${signal}: stopping the servers the bench started`);
    void stopAllChildren().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  for (const [i, scenario] of chosen.entries()) {
    const started = performance.now();
    const progress = (message: string, fraction?: number) => display.update(i, scenario.name, message, fraction);
    progress('starting', 0);
    try {
      const result = await scenario.run({ quick, progress });
      report.scenarios.push({ name: scenario.name, title: scenario.title, seconds: (performance.now() - started) / 1000, ...result });
      display.log(`[${i + 1}/${chosen.length}] ${scenario.name} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    } catch (err) {
      report.scenarios.push({ name: scenario.name, title: scenario.title, seconds: (performance.now() - started) / 1000, error: (err as Error).message });
      display.log(`[${i + 1}/${chosen.length}] ${scenario.name} failed after ${((performance.now() - started) / 1000).toFixed(0)} s: ${(err as Error).message}`);
    }
    await releaseShared(chosen[i + 1]?.shares);
  }
  display.clear();
  process.off('SIGINT', interrupt);
  process.off('SIGTERM', interrupt);
  report.wallSeconds = (performance.now() - t0) / 1000;
  const files = await writeReport(RESULTS_DIR, report);
  console.log(toMarkdown(report));
  console.log(`report: ${files.markdown}\nraw:    ${files.json}${files.charts.length ? `\ncharts: ${path.dirname(files.charts[0]!)}/ (${files.charts.length})` : ''}`);
  return report.scenarios.some((s) => 'error' in s) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runBench(process.argv.slice(2)).then((code) => process.exit(code));
}
