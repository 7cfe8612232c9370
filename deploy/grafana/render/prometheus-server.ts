import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from '../../../core/index.js';
import type { Series } from './panel-svg.js';

const DEPLOY_CONFIG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'prometheus', 'prometheus.yml');
const HOW_TO_GET_IT = 'the panels are drawn from a real Prometheus: `apt-get install -y --no-install-recommends prometheus` (Debian\'s), or set PROMETHEUS_BIN';

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
}

export interface PrometheusServer {
  url: string;
  queryRange(expr: string, start: number, end: number, stepSeconds: number, legend: string): Promise<Series[]>;
  queryInstant(expr: string, at: number, legend: string): Promise<Series[]>;
  stop(): Promise<void>;
}

/**
 * deploy/prometheus/prometheus.yml as it stands (jobs, `instance_name` labels),
 * each target moved to where that instance runs here, and scraped every second.
 */
export function scrapeConfigFor(addresses: Record<string, string>): string {
  const deploy = parse(readFileSync(DEPLOY_CONFIG, 'utf8')) as { scrape_configs: ScrapeConfig[] };
  const scrape_configs = deploy.scrape_configs.map((job) => ({
    ...job,
    static_configs: job.static_configs.map((c) => {
      const name = c.labels?.instance_name;
      const address = name && addresses[name];
      if (!address) throw new Error(`prometheus.yml scrapes instance_name ${name ?? '(none)'}, which this run does not start`);
      return { ...c, targets: [address] };
    }),
  }));
  return stringify({ global: { scrape_interval: '1s', evaluation_interval: '1s' }, scrape_configs });
}

export async function startPrometheus(addresses: Record<string, string>, dir: string): Promise<PrometheusServer> {
  const bin = process.env.PROMETHEUS_BIN ?? 'prometheus';
  if (spawnSync(bin, ['--version']).error) throw new Error(`no ${bin}: ${HOW_TO_GET_IT}`);
  const config = path.join(dir, 'prometheus.yml');
  await writeFile(config, scrapeConfigFor(addresses));
  const port = await freePort();
  const child = spawn(bin, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(path.join(dir, 'prometheus.log'));
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/-/ready`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not start; see ${path.join(dir, 'prometheus.log')}`);
    }
    await sleep(200);
  }

  async function api(pathAndQuery: string, legend: string): Promise<Series[]> {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: { metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`prometheus: ${body.error ?? res.status} for ${decodeURIComponent(pathAndQuery)}`);
    return body.data.result.map((r) => ({
      name: legendOf(legend, r.metric),
      labels: r.metric,
      points: (r.values ?? (r.value ? [r.value] : [])).map(([t, v]) => [t, Number(v)] as [number, number]),
    }));
  }

  return {
    url,
    queryRange: (expr, start, end, step, legend) => api(`/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) })}`, legend),
    queryInstant: (expr, at, legend) => api(`/api/v1/query?${new URLSearchParams({ query: expr, time: String(at) })}`, legend),
    stop,
  };
}

/** Grafana's legend format: `{{label}}` replaced by the series' label; empty: the labels as written. */
function legendOf(format: string, labels: Record<string, string>): string {
  if (format) return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => labels[k] ?? '');
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return pairs.length ? `{${pairs.join(', ')}}` : 'value';
}
