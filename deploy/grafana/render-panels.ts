/**
 * Screenshots of the dashboards over real data, where Grafana cannot run (it is
 * not in Debian): starts pgwake as docker-compose.yml does (two gateways, two
 * autoscalers, the control API, over Redis and a catalog Postgres), Debian's
 * Prometheus scraping it every second with deploy/prometheus/prometheus.yml's
 * jobs and labels, drives a couple of minutes of traffic (render/traffic.ts),
 * then runs every panel's own PromQL against that Prometheus, draws the panels
 * where Grafana's grid puts them, and has headless Chromium take each page.
 *
 *   npx tsx deploy/grafana/render-panels.ts [--seconds 150] [--out docs/dashboards]
 *
 * Needs `prometheus` and `chromium` (apt-get install -y --no-install-recommends
 * prometheus chromium) and a Redis (redis-server, or Docker); with `pngquant`
 * installed the PNGs shrink to a third. Fails, naming them, when a panel comes
 * back empty.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startSharedServices } from '../../test/bin/roles.js';
import { loadDashboards, type Dashboard } from './queries.js';
import { dashboardPage, pageHeight, PAGE_WIDTH } from './render/dashboard-page.js';
import type { Series } from './render/panel-svg.js';
import { sampleAt, startRole, type RoleProcess } from './render/pgwake-processes.js';
import { startPrometheus, type PrometheusServer } from './render/prometheus-server.js';
import { driveTraffic } from './render/traffic.js';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '150' }, out: { type: 'string', default: 'docs/dashboards' } } });
const seconds = Number(args.seconds);
const outDir = path.resolve(args.out!);
const t0 = Date.now();
const say = (line: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`);

const CHROMIUM = process.env.CHROMIUM_BIN ?? 'chromium';
if (spawnSync(CHROMIUM, ['--version']).error) throw new Error(`no ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)`);

const work = await mkdtemp(path.join(tmpdir(), 'pgwake-dashboards-'));
await chmod(work, 0o755); // computes run as an unprivileged user when this runs as root
const stops: (() => Promise<void>)[] = [];
const empty: string[] = [];
try {
  say(`work dir ${work}`);
  const shared = await startSharedServices();
  stops.push(() => shared.stop());
  const env = {
    ...shared.env,
    PGWAKE_METRICS_PER_DB_LIMIT: '10',
    PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '1',
    PGWAKE_HANDOFF_DRAIN_TIMEOUT_MS: '2000',
    PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '3',
    PGWAKE_AUTOSCALER_LEASE_TTL_MS: '3000',
    // Every client here is 127.0.0.1: the wrong passwords of the traffic must not ban the address the good clients share.
    PGWAKE_BAN_FAILED_LOGINS: '0',
  };
  const roles: RoleProcess[] = [];
  const start = async (name: string, role: RoleProcess['role'], dataDirName?: string) => {
    const p = await startRole(name, role, env, work, dataDirName);
    roles.push(p);
    stops.push(() => p.stop());
    say(`${name} up (${role}, metrics ${p.metricsAddress})`);
    return p;
  };
  const autoscaler1 = await start('autoscaler-1', 'autoscaler', 'autoscalers');
  while ((await sampleAt(autoscaler1.metricsAddress, 'pgwake_autoscaler_leader')) !== 1) await sleep(200);
  await start('autoscaler-2', 'autoscaler', 'autoscalers');
  const gateways = [await start('gateway-1', 'gateway'), await start('gateway-2', 'gateway')];
  const api = await start('control-api', 'control-api');

  const prometheus = await startPrometheus(Object.fromEntries(roles.map((r) => [r.instanceName, r.metricsAddress])), work);
  stops.push(() => prometheus.stop());
  say(`prometheus ${prometheus.url}, scraping every second`);
  await sleep(5_000);
  const from = Date.now() / 1000 - 5;

  await driveTraffic({
    apiUrl: api.apiUrl!,
    gatewayPorts: gateways.map((g) => g.gatewayPort!),
    seconds,
    say,
    failover: () => autoscaler1.stop(),
  });
  await sleep(6_000);
  const to = Date.now() / 1000;

  await mkdir(outDir, { recursive: true });
  const profile = path.join(work, 'chromium-profile');
  for (const d of loadDashboards()) {
    const data = await panelData(prometheus, d, from, to);
    d.panels.forEach((p, i) => {
      if (!data[i]!.some((s) => s.points.some(([, v]) => Number.isFinite(v)))) empty.push(`${d.uid} / ${p.title}`);
    });
    const page = path.join(work, `${d.uid}.html`);
    await writeFile(page, dashboardPage(d, data, { start: from, end: to }, `drawn from Prometheus ${prometheusVersion()} over a real pgwake run (the panels' own PromQL; Grafana's layout)`));
    const png = path.join(outDir, `${d.uid}.png`);
    await rm(profile, { recursive: true, force: true });
    const shot = spawnSync(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${profile}`, `--screenshot=${png}`, `--window-size=${PAGE_WIDTH},${pageHeight(d)}`, `file://${page}`],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (shot.status !== 0) throw new Error(`chromium failed for ${d.uid}: ${shot.stderr}`);
    // A chart has few colours: a palette PNG is a third of the size and looks the same.
    if (!spawnSync('pngquant', ['--version']).error) spawnSync('pngquant', ['--force', '--skip-if-larger', '--quality', '60-90', '--output', png, png]);
    say(`${path.relative(process.cwd(), png)} (${Math.round((await stat(png)).size / 1024)} KiB, ${d.panels.length} panels)`);
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch((err: Error) => say(`stop failed: ${err.message}`));
  await rm(work, { recursive: true, force: true });
}
if (empty.length > 0) {
  console.error(`panels with no data:\n  ${empty.join('\n  ')}`);
  process.exit(1);
}
say('every panel has data');

/** Every target of every panel, over the run: ranges for graphs and stats, the last instant for tables. */
async function panelData(prometheus: PrometheusServer, d: Dashboard, from: number, to: number): Promise<Series[][]> {
  const step = Math.max(1, Math.round((to - from) / 300));
  const out: Series[][] = [];
  for (const p of d.panels) {
    const series: Series[] = [];
    for (const t of p.targets) series.push(...(t.instant ? await prometheus.queryInstant(t.expr, to, t.legend) : await prometheus.queryRange(t.expr, from, to, step, t.legend)));
    out.push(series);
  }
  return out;
}

function prometheusVersion(): string {
  const v = spawnSync(process.env.PROMETHEUS_BIN ?? 'prometheus', ['--version'], { encoding: 'utf8' });
  return /version (\S+)/.exec(v.stdout + v.stderr)?.[1] ?? '';
}
