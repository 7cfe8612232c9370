import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DASHBOARDS, DASHBOARDS_DIR, dashboardFile, dashboardText } from '../../deploy/grafana/dashboards.js';
import { familyOf, loadDashboards, metricNamesOf, parseExposition, samplesOf, type MetricFamily } from '../../deploy/grafana/queries.js';
import { ApiClient, eventually } from '../control-api/client.js';
import { SseReader } from '../control-api/sse.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const readYaml = (file: string) => parse(readFileSync(path.join(ROOT, file), 'utf8')) as any;
const dashboards = loadDashboards();
const queried = [...new Set(dashboards.flatMap((d) => d.panels.flatMap((p) => p.targets.flatMap((t) => metricNamesOf(t.expr)))))].sort();

describe('dashboards as files', () => {
  it('are the JSON deploy/grafana/dashboards.ts makes: overview, gateway, autoscaler and handoffs', () => {
    expect(readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json')).sort()).toEqual(DASHBOARDS.map((d) => `${d.uid}.json`).sort());
    expect(DASHBOARDS.map((d) => d.uid).sort()).toEqual(['pgwake-autoscaler', 'pgwake-gateway', 'pgwake-overview']);
    for (const d of DASHBOARDS) expect(readFileSync(dashboardFile(d), 'utf8'), `${d.uid}: run npx tsx deploy/grafana/dashboards.ts`).toBe(dashboardText(d));
  });

  it('are provisioned from the folder docker-compose.yml mounts, on the datasource it provisions, which is the compose Prometheus', () => {
    const compose = readYaml('docker-compose.yml');
    const grafanaVolumes: string[] = compose.services.grafana.volumes;
    const mountOf = (source: string) => grafanaVolumes.map((v) => v.split(':')).find(([from]) => from === source)?.[1];
    const provisioning = mountOf('./deploy/grafana/provisioning');
    expect(provisioning).toBe('/etc/grafana/provisioning');
    const providers = readYaml('deploy/grafana/provisioning/dashboards/pgwake.yml').providers as { options: { path: string } }[];
    expect(providers.map((p) => p.options.path)).toEqual([mountOf('./deploy/grafana/dashboards')]);
    const datasources = readYaml('deploy/grafana/provisioning/datasources/prometheus.yml').datasources as { uid: string; type: string; url: string }[];
    expect(datasources).toHaveLength(1);
    const [source] = datasources;
    expect(source!.type).toBe('prometheus');
    const url = new URL(source!.url);
    expect(compose.services[url.hostname]?.image).toMatch(/prometheus/);
    expect(compose.services[url.hostname].ports).toContain(`${url.port}:${url.port}`);
    for (const d of dashboards) expect(d.datasourceUids, d.file).toEqual([source!.uid]);
  });

  it('have unique ids and titles, panels that do not overlap, and a query, a unit and a description on every panel', () => {
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(dashboards.length);
    expect(new Set(dashboards.map((d) => d.title)).size).toBe(dashboards.length);
    for (const d of dashboards) {
      const cells = new Set<string>();
      for (const p of d.panels) {
        expect(p.targets.length, `${d.uid} / ${p.title}`).toBeGreaterThan(0);
        expect(p.unit, `${d.uid} / ${p.title}`).not.toBe('');
        expect(p.description.length, `${d.uid} / ${p.title}`).toBeGreaterThan(10);
        expect(p.gridPos.x + p.gridPos.w, `${d.uid} / ${p.title}`).toBeLessThanOrEqual(24);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            expect(cells.has(`${x},${y}`), `${d.uid} / ${p.title} overlaps at ${x},${y}`).toBe(false);
            cells.add(`${x},${y}`);
          }
        }
      }
    }
  });

  it('query in valid PromQL, each naming the metrics it reads', () => {
    for (const d of dashboards) for (const p of d.panels) for (const t of p.targets) expect(metricNamesOf(t.expr).length, `${d.uid} / ${p.title}: ${t.expr}`).toBeGreaterThan(0);
    expect(queried.length).toBeGreaterThan(30);
  });
});

describe('reading PromQL and Prometheus text', () => {
  it('finds the metric names through functions, aggregations, binary operators and histogram suffixes', () => {
    expect(metricNamesOf('histogram_quantile(0.95, sum by (le, kind) (rate(a_seconds_bucket{kind="cold"}[5m])))')).toEqual(['a_seconds_bucket']);
    expect(metricNamesOf('sum(rate(b_seconds_sum[1m])) / sum without (instance) (rate(b_seconds_count[1m])) * 60')).toEqual(['b_seconds_sum', 'b_seconds_count']);
    expect(metricNamesOf('max by (state) (c) > 0 or on() vector(0)')).toEqual(['c']);
    // `by (le)`, label names and function names are never taken for metrics.
    expect(metricNamesOf('sum by (job) (rate(d_total{job="x"}[1m]))')).toEqual(['d_total']);
  });

  it('refuses what it cannot follow: a syntax error, a selector without a metric name', () => {
    expect(() => metricNamesOf('sum(rate(x_total[1m])')).toThrow(/syntax/);
    expect(() => metricNamesOf('{__name__=~"pgwake_.*"}')).toThrow(/without a metric name/);
  });

  it('maps _bucket, _sum and _count to their histogram, and only for histograms', () => {
    const families = parseExposition(
      ['# TYPE h_seconds histogram', 'h_seconds_bucket{le="0.1",kind="a b"} 1', 'h_seconds_bucket{le="+Inf",kind="a b"} 2', 'h_seconds_sum{kind="a b"} 0.3', 'h_seconds_count{kind="a b"} 2', '# TYPE g_count gauge', 'g_count 4', ''].join('\n'),
    );
    expect(familyOf('h_seconds_bucket', families)).toBe('h_seconds');
    expect(familyOf('h_seconds_count', families)).toBe('h_seconds');
    expect(familyOf('g_count', families)).toBe('g_count');
    expect(familyOf('g', families)).toBe('g');
    expect(samplesOf('h_seconds_bucket', families).map((s) => s.labels)).toEqual([{ le: '0.1', kind: 'a b' }, { le: '+Inf', kind: 'a b' }]);
    expect(samplesOf('h_seconds_sum', families)[0]!.value).toBe(0.3);
    expect(samplesOf('nothing_total', families)).toEqual([]);
  });
});

/**
 * Metrics a dashboard may chart that this traffic cannot move, each with why. Every
 * other metric a dashboard queries must not only be exported but show a non-zero
 * sample in some scrape of the run.
 */
const NOT_MOVED_BY_THIS_TRAFFIC: Record<string, string> = {
  pgwake_compute_unexpected_exits_total: 'needs a compute that crashes',
  pgwake_scale_decisions_total: 'needs sustained load on a db with autoscaling limits (the policy itself is tested in test/autoscaler)',
};

describe('dashboards over a running pgwake', () => {
  let stack: TestStack;
  let api: ApiClient;
  const clients: pg.Client[] = [];
  /** Every scrape of the run, by where it came from. */
  const scrapes: { role: string; families: Map<string, MetricFamily> }[] = [];

  beforeAll(async () => {
    stack = await startTestStack({
      PGWAKE_METRICS_PER_DB_LIMIT: '3',
      PGWAKE_HANDOFF_DRAIN_TIMEOUT_MS: '2000',
      PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '1',
      PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_UP_SECONDS: '0',
      PGWAKE_AUTOSCALE_INTERVAL_MS: '100',
    });
    api = await new ApiClient(stack.controlApi!.url).signUp('observability');
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await stack?.destroy();
  });

  /** Scrapes every role's /metrics: the gateway and autoscaler on PGWAKE_METRICS_PORT, the control API on its own port. */
  async function scrapeAll(): Promise<void> {
    for (const [role, url] of [
      ['gateway+autoscaler', `http://127.0.0.1:${stack.metricsPort}/metrics`],
      ['control-api', `${stack.controlApi!.url}/metrics`],
    ] as const) {
      const res = await fetch(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/plain/);
      scrapes.push({ role, families: parseExposition(await res.text()) });
    }
  }

  const last = () => scrapes[scrapes.length - 2]!.families; // the gateway+autoscaler scrape of the latest round
  const value = (families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}) =>
    samplesOf(name, families)
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);

  async function connect(user: string, password: string, database = 'app'): Promise<pg.Client> {
    const c = new pg.Client({ host: '127.0.0.1', port: stack.gateway!.port, user, password, database });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  }

  const describeDb = async (id: string) => (await api.get(`/v2/dbs/${id}`)).body;

  it('after real traffic (a failed and a finished handoff among it), every metric the dashboards query is exported and moved; describe and events say why the handoff failed', async () => {
    // A tenant and a db through the API; nothing runs until the first connection.
    const tenant = await api.post('/v2/tenants', { name: 'obs' });
    expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
    const { pg_user: user, pg_password: password } = tenant.body as { pg_user: string; pg_password: string };
    const created = await api.post('/v2/tenants/obs/dbs', { name: 'app' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id: string = created.body.id;
    const accountEvents = await SseReader.open(`${stack.controlApi!.url}/v2/events`, api.key!, 0);

    // Session mode: a cold connection wakes the compute, a second one finds it running.
    const first = await connect(user, password);
    expect((await first.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const second = await connect(user, password);
    await second.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
    await second.query("INSERT INTO notes (body) SELECT repeat('x', 1000) FROM generate_series(1, 200)");
    await first.end();
    await second.end();

    // What fails at the door: a wrong password (28P01), a db that does not exist (3D000).
    await expect(connect(user, 'not-the-password')).rejects.toMatchObject({ code: '28P01' });
    await expect(connect(user, password, 'nope')).rejects.toMatchObject({ code: '3D000' });

    // Transaction mode on one server connection: four clients take turns for it (checkout waits).
    expect((await api.patch('/v2/tenants/obs/dbs/app', { pool_mode: 'transaction', pool_size: 1 })).status).toBe(200);
    const pooled = await Promise.all([1, 2, 3, 4].map(() => connect(user, password)));
    await Promise.all(pooled.map(async (c) => {
      for (let i = 0; i < 5; i++) await c.query('SELECT pg_sleep(0.02), count(*) FROM notes');
    }));

    // Suspend by API while the pooled clients stay connected; the next transaction resumes it.
    const suspended = await api.post(`/v2/dbs/${id}/suspend`);
    expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
    expect(suspended.body.state).toBe('suspended');
    expect((await pooled[0]!.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 200 }]);
    expect((await describeDb(id)).state).toBe('running');
    await scrapeAll();

    // A handoff that cannot drain: a transaction stays open past the drain deadline, so it rolls back (drain_timeout).
    const holder = pooled[1]!;
    await holder.query('BEGIN');
    await holder.query('SELECT 1');
    expect((await api.patch('/v2/tenants/obs/dbs/app', { size: 'L2' })).status).toBe(200);
    await eventually(async () => (await describeDb(id)).scale_state === 'FROZEN', 60_000, 'FROZEN');
    const heldByFreeze = pooled[2]!.query('SELECT 2 AS two');
    await new Promise((r) => setTimeout(r, 300));
    await scrapeAll(); // mid-freeze: a client waits, the freeze and maxwait show
    expect(value(last(), 'pgwake_gateway_frozen_dbs')).toBe(1);
    expect(value(last(), 'pgwake_gateway_client_connections', { state: 'waiting' })).toBe(1);
    expect(value(last(), 'pgwake_gateway_checkout_maxwait_seconds')).toBeGreaterThanOrEqual(0.25);
    expect(value(last(), 'pgwake_dbs_by_scale_state', { scale_state: 'FROZEN' })).toBe(1);
    const failed = await eventually(async () => {
      const d = await describeDb(id);
      return d.scale_state === 'FAILED' ? d : null;
    }, 30_000, 'FAILED');
    // Operators see why, in the describe …
    expect(failed).toMatchObject({ scale_state: 'FAILED', scale_failure_reason: 'drain_timeout', current_profile: 'L1', freeze_new_checkouts: false });
    await holder.query('COMMIT'); // it holds the one server connection the waiting client needs
    expect((await heldByFreeze).rows).toEqual([{ two: 2 }]);
    // … in the event stream …
    await accountEvents.until((r) => r.events().some((e) => e.type === 'db.scale.failed'), 10_000, 'db.scale.failed');
    const failedEvent = accountEvents.events().find((e) => e.type === 'db.scale.failed')!;
    expect(failedEvent).toMatchObject({ db_id: id, data: { scale_state: 'FAILED', scale_failure_reason: 'drain_timeout' } });
    accountEvents.close();
    // … and in the metrics, under the same reason.
    // (counted once the candidate is torn down, a moment after FAILED is written)
    await eventually(async () => {
      await scrapeAll();
      return value(last(), 'pgwake_handoffs_total', { result: 'failed', reason: 'drain_timeout' }) === 1;
    }, 20_000, 'the failed handoff counted under drain_timeout');
    expect(value(last(), 'pgwake_handoffs_total', { result: 'failed' })).toBe(1);

    // Once the cooldown passed, the same PATCH hands off for real while the clients keep working.
    await eventually(async () => (await describeDb(id)).scale_state === 'STABLE', 30_000, 'STABLE after the cooldown');
    let working = true;
    const load = Promise.all(pooled.map(async (c) => {
      let n = 0;
      while (working) {
        await c.query('INSERT INTO notes (body) VALUES ($1)', ['during the handoff']);
        n++;
      }
      return n;
    }));
    expect((await api.patch('/v2/tenants/obs/dbs/app', { size: 'L2' })).status).toBe(200);
    const moved = await eventually(async () => {
      const d = await describeDb(id);
      return d.scale_state === 'STABLE' && d.current_profile === 'L2' ? d : null;
    }, 90_000, 'the handoff to L2');
    working = false;
    const inserted = (await load).reduce((a, b) => a + b, 0);
    expect(moved).toMatchObject({ scale_failure_reason: null, freeze_new_checkouts: false });
    expect((await pooled[3]!.query("SELECT count(*)::int AS n FROM notes WHERE body = 'during the handoff'")).rows).toEqual([{ n: inserted }]);

    // The clients stay connected (idle) for the per-db gauges; then the final scrape.
    await eventually(async () => {
      await scrapeAll();
      return value(last(), 'pgwake_handoffs_total', { result: 'stable' }) === 1;
    }, 20_000, 'the finished handoff counted');
    const final = last();
    expect(value(final, 'pgwake_handoffs_total', { result: 'stable' })).toBe(1);
    expect(value(final, 'pgwake_gateway_wakes_total', { result: 'started' })).toBeGreaterThanOrEqual(2);
    expect(value(final, 'pgwake_gateway_auth_failures_total')).toBeGreaterThanOrEqual(1);
    expect(value(final, 'pgwake_gateway_connections_total', { outcome: 'db_not_found' })).toBe(1);
    expect(value(final, 'pgwake_suspends_total', { reason: 'request' })).toBe(1);
    expect(value(final, 'pgwake_autoscaler_leader')).toBe(1);
    expect(value(final, 'pgwake_autoscaler_lease_control_epoch')).toBe(stack.autoscaler!.epoch);
    expect(value(final, 'pgwake_db_info', { db_id: id, state: 'running', scale_state: 'STABLE', profile: 'L2' })).toBe(1);
    expect(value(final, 'pgwake_gateway_db_client_connections', { db_id: id })).toBe(pooled.length);
    expect(value(final, 'pgwake_handoff_freeze_seconds_count')).toBe(1);

    // The point of it all: no dashboard points at a metric pgwake does not export, or at one the run left untouched.
    const exported = (name: string) => scrapes.some((s) => samplesOf(name, s.families).length > 0);
    const moves = (name: string) => scrapes.some((s) => samplesOf(name, s.families).some((x) => x.value !== 0));
    const missing = queried.filter((m) => !exported(m));
    expect(missing, 'queried by a dashboard, exported by no role').toEqual([]);
    const still = queried.filter((m) => !moves(m) && !(m in NOT_MOVED_BY_THIS_TRAFFIC));
    expect(still, 'queried by a dashboard, never non-zero in this run').toEqual([]);
    // The allowance is for metrics the dashboards really use, and they are exported all the same.
    for (const m of Object.keys(NOT_MOVED_BY_THIS_TRAFFIC)) expect(queried).toContain(m);
    // Each role's own metrics come from its own endpoint.
    const controlApi = scrapes.filter((s) => s.role === 'control-api').at(-1)!.families;
    expect(value(controlApi, 'pgwake_http_request_duration_seconds_count', { route: '/v2/dbs/:id', status_code: '200' })).toBeGreaterThan(0);
  }, 240_000);
});
