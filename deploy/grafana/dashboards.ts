/**
 * The Grafana dashboards, written as data: `npx tsx deploy/grafana/dashboards.ts`
 * writes them to deploy/grafana/dashboards/*.json, which Grafana's provisioning
 * loads (deploy/grafana/provisioning/dashboards/pgwake.yml). A test checks the
 * JSON files are what this file makes, and that every metric their queries name
 * is exported by a running pgwake.
 *
 * Queries never use Grafana's `$__` variables, so Prometheus (and the panel
 * renderer, render-panels.ts) can run them as they stand. `instance_name` and
 * `job` come from deploy/prometheus/prometheus.yml.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Query {
  expr: string;
  legend: string;
}

export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  kind?: 'timeseries' | 'stat' | 'table';
  /** Width in Grafana's 24 columns (default 12; stats 4). */
  w?: number;
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  panels: PanelSpec[];
}

const q = (expr: string, legend = ''): Query => ({ expr, legend });
const quantiles = (metric: string, range: string, by = '', qs = [0.5, 0.95, 0.99]): Query[] =>
  qs.map((p) => q(`histogram_quantile(${p}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket[${range}])))`, `p${Math.round(p * 100)}${by ? ` {{${by}}}` : ''}`));
const HANDOFF_UNDER_WAY = 'PREPARING|CATCHING_UP|FROZEN|CUTOVER';

export const DASHBOARDS: DashboardSpec[] = [
  {
    uid: 'pgwake-overview',
    title: 'pgwake overview',
    description: 'At a glance: which dbs run, sleep or move, how long wakes take, where checkouts wait, how the control API answers.',
    panels: [
      { kind: 'stat', title: 'Dbs running', description: 'Dbs whose writer runs (pgwake_dbs{state="running"}).', unit: 'short', queries: [q('max(pgwake_dbs{state="running"})')] },
      { kind: 'stat', title: 'Dbs suspended', description: 'Dbs asleep until their next connection.', unit: 'short', queries: [q('max(pgwake_dbs{state="suspended"})')] },
      { kind: 'stat', title: 'Dbs mid-handoff', description: `Dbs whose scale_state is ${HANDOFF_UNDER_WAY.replaceAll('|', ', ')}.`, unit: 'short', queries: [q(`max(sum by (instance) (pgwake_dbs_by_scale_state{scale_state=~"${HANDOFF_UNDER_WAY}"}))`)] },
      { kind: 'stat', title: 'Client connections', description: 'Client connections open on every gateway.', unit: 'short', queries: [q('sum(pgwake_gateway_connections)')] },
      { kind: 'stat', title: 'Wake p95 (5m)', description: 'From a client authenticated to its session ready, 95th percentile.', unit: 's', queries: [q('histogram_quantile(0.95, sum by (le) (rate(pgwake_gateway_wake_seconds_bucket[5m])))')] },
      { kind: 'stat', title: 'Handoffs failed (1h)', description: 'The autoscaler dashboard says why (scale_failure_reason).', unit: 'short', queries: [q('round(sum(increase(pgwake_handoffs_total{result="failed"}[1h])))')] },
      { title: 'Client connections open, per gateway', description: 'Every client connection, from its first byte to its close.', unit: 'short', queries: [q('sum by (instance_name) (pgwake_gateway_connections)', '{{instance_name}}')] },
      { title: 'Client connections by outcome (/s)', description: 'How connections ended their startup: relayed, auth_failed, db_not_found, compute_unavailable, …', unit: 'ops', queries: [q('sum by (outcome) (rate(pgwake_gateway_connections_total[1m]))', '{{outcome}}')] },
      { title: 'Wake latency seen by clients', description: 'From a client authenticated to its session ready on the compute.', unit: 's', queries: quantiles('pgwake_gateway_wake_seconds', '5m') },
      { title: 'Compute starts by result (/s)', description: 'Writer starts (resumes): every wake that started a compute.', unit: 'ops', queries: [q('sum by (result) (rate(pgwake_compute_starts_total[5m]))', '{{result}}')] },
      { title: 'Computes running', description: 'Writers the acting autoscaler runs.', unit: 'short', queries: [q('max(pgwake_computes_running)', 'running')] },
      { title: 'Dbs by state', description: 'Lifecycle state of every db (deleted ones not counted).', unit: 'short', queries: [q('max by (state) (pgwake_dbs)', '{{state}}')] },
      { title: 'Suspends by reason (/s)', description: 'idle (past its suspend timeout), request (API or operator), shutdown.', unit: 'ops', queries: [q('sum by (reason) (rate(pgwake_suspends_total[5m]))', '{{reason}}')] },
      { title: 'Handoffs by result (/min)', description: 'Profile handoffs that ended: stable (moved) or failed (rolled back).', unit: 'short', queries: [q('sum by (result) (rate(pgwake_handoffs_total[5m])) * 60', '{{result}}')] },
      { title: 'Gateway bytes (/s)', description: 'Bytes relayed between clients and computes.', unit: 'Bps', queries: [q('sum by (direction) (rate(pgwake_gateway_bytes_total[1m]))', '{{direction}}')] },
      { title: 'Checkouts waiting for a server connection', description: 'Clients queued for a server connection, or held by a freeze.', unit: 'short', queries: [q('sum(pgwake_gateway_checkout_queue_length)', 'waiting')] },
      { title: 'Control API latency by route (p95)', description: 'Request duration by route pattern (never the raw URL).', unit: 's', queries: [q('histogram_quantile(0.95, sum by (le, route) (rate(pgwake_http_request_duration_seconds_bucket[5m])))', '{{route}}')] },
      { title: 'Control API requests by status (/s)', description: 'Requests answered, by HTTP status code.', unit: 'reqps', queries: [q('sum by (status_code) (rate(pgwake_http_request_duration_seconds_count[1m]))', '{{status_code}}')] },
    ],
  },
  {
    uid: 'pgwake-gateway',
    title: 'pgwake gateway',
    description: 'Clients, wakes, checkouts and server connections of every gateway, in the words of PgBouncer where they fit.',
    panels: [
      { kind: 'stat', title: 'Clients active', description: "A checkout in flight (PgBouncer's cl_active).", unit: 'short', queries: [q('sum(pgwake_gateway_client_connections{state="active"})')] },
      { kind: 'stat', title: 'Clients waiting', description: "Queued for a server connection (PgBouncer's cl_waiting).", unit: 'short', queries: [q('sum(pgwake_gateway_client_connections{state="waiting"})')] },
      { kind: 'stat', title: 'Max wait', description: "How long the oldest waiting checkout has waited (PgBouncer's maxwait).", unit: 's', queries: [q('max(pgwake_gateway_checkout_maxwait_seconds)')] },
      { kind: 'stat', title: 'Server connections', description: 'Pooled server connections open to computes.', unit: 'short', queries: [q('sum(pgwake_gateway_server_connections)')] },
      { kind: 'stat', title: 'Auth failures (1h)', description: 'Failed client authentications.', unit: 'short', queries: [q('round(sum(increase(pgwake_gateway_auth_failures_total[1h])))')] },
      { kind: 'stat', title: 'Frozen dbs', description: 'Dbs whose new checkouts wait for a handoff to cut over.', unit: 'short', queries: [q('sum(pgwake_gateway_frozen_dbs)')] },
      { title: 'Client connections by state', description: 'active: a checkout in flight; waiting: queued for a server connection; idle: connected, holding nothing (transaction mode between transactions). open: every connection, authenticating ones too.', unit: 'short', queries: [q('sum by (state) (pgwake_gateway_client_connections)', '{{state}}'), q('sum(pgwake_gateway_connections)', 'open')] },
      { title: 'Connections by outcome (/s)', description: 'How each connection ended its startup.', unit: 'ops', queries: [q('sum by (outcome) (rate(pgwake_gateway_connections_total[1m]))', '{{outcome}}')] },
      { title: 'Auth failures by reason (/s)', description: 'unknown_user and wrong_password look alike to clients (28P01); operators see which.', unit: 'ops', queries: [q('sum by (reason) (rate(pgwake_gateway_auth_failures_total[1m]))', '{{reason}}')] },
      { title: 'Session ready: cold and warm (p50, p95)', description: 'From a client authenticated to its session ready. cold: a start was asked for; warm: the compute ran.', unit: 's', queries: quantiles('pgwake_gateway_wake_seconds', '5m', 'kind', [0.5, 0.95]) },
      { title: 'Wakes asked for by result (/s)', description: 'A client or a pool found the compute stopped and asked the autoscaler to start it: started, timeout (57P03), db_gone, client_gone, failed.', unit: 'ops', queries: [q('sum by (result) (rate(pgwake_gateway_wakes_total[1m]))', '{{result}}')] },
      { title: 'Wake request time', description: 'From asking for a wake to the started compute\'s route.', unit: 's', queries: quantiles('pgwake_gateway_wake_request_seconds', '5m', '', [0.5, 0.95]) },
      { title: 'Checkout wait', description: 'How long transaction-mode checkouts waited for a server connection (freezes included).', unit: 's', queries: quantiles('pgwake_gateway_checkout_wait_seconds', '1m') },
      { title: 'Checkouts by outcome (/s)', description: 'served, or timeout (53300 after the checkout timeout).', unit: 'ops', queries: [q('sum by (outcome) (rate(pgwake_gateway_checkouts_total[1m]))', '{{outcome}}')] },
      { title: 'Checkout queue', description: 'Clients waiting for a server connection or for a freeze to lift.', unit: 'short', queries: [q('sum(pgwake_gateway_checkout_queue_length)', 'waiting')] },
      { title: 'Max wait', description: 'Age of the oldest waiting checkout, per gateway.', unit: 's', queries: [q('max by (instance_name) (pgwake_gateway_checkout_maxwait_seconds)', '{{instance_name}}')] },
      { title: 'Server connections by state', description: "idle (sv_idle), active (sv_active: with a client or being reset), opening (sv_login).", unit: 'short', queries: [q('sum by (state) (pgwake_gateway_server_connections)', '{{state}}')] },
      { title: 'Bytes relayed (/s)', description: 'Between clients and computes, each way.', unit: 'Bps', queries: [q('sum by (direction) (rate(pgwake_gateway_bytes_total[1m]))', '{{direction}}')] },
      { title: 'Freezes held by the gateway', description: 'How long dbs stayed frozen here (freeze applied to lift), and how many are frozen now.', unit: 's', queries: [...quantiles('pgwake_gateway_freeze_seconds', '5m', '', [0.5, 0.95]), q('max(pgwake_gateway_freeze_seconds_sum / pgwake_gateway_freeze_seconds_count)', 'mean since start')] },
      { title: 'Clients per db (first N dbs)', description: 'Client connections of the dbs PGWAKE_METRICS_PER_DB_LIMIT labels; the rest as db_id="other".', unit: 'short', queries: [q('sum by (db_id) (pgwake_gateway_db_client_connections)', '{{db_id}}')] },
      { title: 'Gateway memory', description: 'Resident set size of each gateway process.', unit: 'bytes', queries: [q('max by (instance_name) (process_resident_memory_bytes{job="pgwake-gateway"})', '{{instance_name}}')] },
      { title: 'Gateway CPU (cores)', description: 'CPU seconds per second of each gateway process: one gateway is one core at most.', unit: 'short', queries: [q('sum by (instance_name) (rate(process_cpu_seconds_total{job="pgwake-gateway"}[1m]))', '{{instance_name}}')] },
      { w: 24, title: 'Gateway event loop lag (p99)', description: 'A gateway that falls behind its sockets shows it here first.', unit: 's', queries: [q('max by (instance_name) (nodejs_eventloop_lag_p99_seconds{job="pgwake-gateway"})', '{{instance_name}}')] },
    ],
  },
  {
    uid: 'pgwake-autoscaler',
    title: 'pgwake autoscaler and handoffs',
    description: 'Who acts, what runs, what sleeps, and every profile handoff: how long, how long frozen, and why one failed.',
    panels: [
      { kind: 'stat', title: 'Acting autoscalers', description: 'Autoscalers holding the lease: 1 when all is well.', unit: 'short', queries: [q('sum(pgwake_autoscaler_leader)')] },
      { kind: 'stat', title: 'lease_control_epoch', description: 'The fencing epoch the acting autoscaler writes; it grows at every failover.', unit: 'none', queries: [q('max(pgwake_autoscaler_lease_control_epoch)')] },
      { kind: 'stat', title: 'Computes running', description: 'Writers the acting autoscaler runs.', unit: 'short', queries: [q('sum(pgwake_computes_running)')] },
      { kind: 'stat', title: 'Handoffs under way', description: `scale_state ${HANDOFF_UNDER_WAY.replaceAll('|', ', ')}.`, unit: 'short', queries: [q(`max(sum by (instance) (pgwake_dbs_by_scale_state{scale_state=~"${HANDOFF_UNDER_WAY}"}))`)] },
      { kind: 'stat', title: 'Handoffs done (1h)', description: 'Handoffs that reached STABLE on the new profile.', unit: 'short', queries: [q('round(sum(increase(pgwake_handoffs_total{result="stable"}[1h])))')] },
      { kind: 'stat', title: 'Handoffs failed (1h)', description: 'Rolled back to the old writer; see the reasons below.', unit: 'short', queries: [q('round(sum(increase(pgwake_handoffs_total{result="failed"}[1h])))')] },
      { title: 'Leader per autoscaler', description: '1: holds the autoscaler lease and acts; 0: stands by.', unit: 'short', queries: [q('max by (instance_name) (pgwake_autoscaler_leader)', '{{instance_name}}')] },
      { title: 'lease_control_epoch', description: 'Epoch per autoscaler (0 while standing by).', unit: 'none', queries: [q('max by (instance_name) (pgwake_autoscaler_lease_control_epoch)', '{{instance_name}}')] },
      { title: 'Dbs by state', description: 'Lifecycle state of every db.', unit: 'short', queries: [q('max by (state) (pgwake_dbs)', '{{state}}')] },
      { title: 'Dbs by scale_state', description: 'STABLE, or where a handoff stands.', unit: 'short', queries: [q('max by (scale_state) (pgwake_dbs_by_scale_state)', '{{scale_state}}')] },
      { title: 'Resumes and suspends (/min)', description: 'Compute starts (resumes) by result; suspends by reason.', unit: 'short', queries: [q('sum by (result) (increase(pgwake_compute_starts_total[1m]))', 'resume {{result}}'), q('sum by (reason) (increase(pgwake_suspends_total[1m]))', 'suspend {{reason}}')] },
      { title: 'Compute start time', description: 'From asking the driver for a writer to it accepting connections.', unit: 's', queries: quantiles('pgwake_compute_start_seconds', '5m', '', [0.5, 0.95]) },
      { title: 'Handoffs by result (/15m)', description: 'stable: moved to the new profile; failed: rolled back.', unit: 'short', queries: [q('sum by (result) (increase(pgwake_handoffs_total[15m]))', '{{result}}')] },
      { title: 'Handoff failures by scale_failure_reason (1h)', description: 'Why handoffs failed: the same reason describe (scale_failure_reason) and the db.scale.failed event carry.', unit: 'short', queries: [q('sum by (reason) (increase(pgwake_handoffs_total{result="failed"}[1h])) > 0', '{{reason}}')] },
      { title: 'Handoff duration', description: 'From PREPARING to STABLE or FAILED.', unit: 's', queries: quantiles('pgwake_handoff_seconds', '15m', 'result', [0.5, 0.95]) },
      { title: 'Freeze window', description: 'FROZEN written to the freeze lifted with the new route: the time new checkouts waited.', unit: 's', queries: [...quantiles('pgwake_handoff_freeze_seconds', '15m', '', [0.5, 0.95]), q('sum(rate(pgwake_handoff_freeze_seconds_sum[15m])) / sum(rate(pgwake_handoff_freeze_seconds_count[15m]))', 'mean')] },
      { title: 'Scale decisions (/15m)', description: 'Handoffs the scaling policy asked for, up or down.', unit: 'short', queries: [q('sum by (direction) (increase(pgwake_scale_decisions_total[15m]))', '{{direction}}')] },
      { title: 'Provision time', description: 'Creating a db: copy the template, create role and database, stop.', unit: 's', queries: quantiles('pgwake_db_provision_seconds', '15m', '', [0.5, 0.95]) },
      { title: 'Unexpected compute exits (/15m)', description: 'Writers that ended without being asked to (crash, kill).', unit: 'short', queries: [q('sum(increase(pgwake_compute_unexpected_exits_total[15m]))', 'exits')] },
      { kind: 'table', w: 12, title: 'Dbs (first N)', description: 'State, scale_state and profile of the first PGWAKE_METRICS_PER_DB_LIMIT dbs of the catalog.', unit: 'none', queries: [q('max by (db_id, state, scale_state, profile) (pgwake_db_info)')] },
    ],
  },
];

const DATASOURCE = { type: 'prometheus', uid: 'prometheus' };

/** Grafana's JSON for one dashboard: panels laid out left to right, in rows of 24 columns. */
export function dashboardJson(d: DashboardSpec): Record<string, unknown> {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = d.panels.map((p, i) => {
    const kind = p.kind ?? 'timeseries';
    const w = p.w ?? (kind === 'stat' ? 4 : 12);
    const h = kind === 'stat' ? 4 : 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { h, w, x, y };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return {
      id: i + 1,
      type: kind,
      title: p.title,
      description: p.description,
      datasource: DATASOURCE,
      gridPos,
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options:
        kind === 'stat'
          ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode: 'value' }
          : kind === 'table'
            ? { showHeader: true }
            : { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
      ...(kind === 'table' ? { transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true } } }] } : {}),
      targets: p.queries.map((t, j) => ({
        refId: String.fromCharCode(65 + j),
        expr: t.expr,
        legendFormat: t.legend,
        datasource: DATASOURCE,
        ...(kind === 'table' ? { format: 'table', instant: true } : {}),
      })),
    };
  });
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['pgwake'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    panels,
  };
}

export const DASHBOARDS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboards');

/** The file each dashboard is provisioned from. */
export function dashboardFile(d: DashboardSpec): string {
  return path.join(DASHBOARDS_DIR, `${d.uid}.json`);
}

export function dashboardText(d: DashboardSpec): string {
  return `${JSON.stringify(dashboardJson(d), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const d of DASHBOARDS) {
    writeFileSync(dashboardFile(d), dashboardText(d));
    console.log(`wrote ${path.relative(process.cwd(), dashboardFile(d))} (${d.panels.length} panels)`);
  }
}
