import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { LineChart } from '../charts/index.js';
import { PgwakeProcess, type BenchDb } from '../fixtures/pgwake-process.js';
import type { Scenario } from '../scenario.js';
import { median, percentile, round } from '../stats.js';

const CLIENTS = 20;
/** The steps of the freeze window the autoscaler times, in order (autoscaler/metrics.ts HANDOFF_FREEZE_STEPS). */
const STEP_NAMES = ['frozen_write', 'drain', 'cutover_write', 'fence', 'replay_wait', 'promote', 'adopt', 'route_write'];
const BUCKET_MS = 100;

/** What the catalog recorded of one handoff: stage times from its events (the catalog's own clock). */
interface HandoffRecord {
  to: string;
  result: 'stable' | 'failed';
  reason: string | null;
  /** FROZEN written → freeze lifted (route switched, or FAILED), ms. */
  freezeMs: number;
  /** PREPARING → STABLE/FAILED, ms. */
  totalMs: number;
  frozenAt: number;
  liftedAt: number;
  /** The autoscaler's own timing of each freeze-window step (pgwake_handoff_step_seconds), ms; empty for a failed handoff. */
  steps: Record<string, number>;
}

interface ScaleEvent {
  type: string;
  at: number;
  data: { scale_state: string; scale_failure_reason: string | null; freeze_new_checkouts: boolean; updated_at: string };
}

/** The control API as one account of its own: its key also reads that account's event stream. */
class Account {
  private constructor(readonly apiUrl: string, readonly key: string) {}

  static async signUp(apiUrl: string): Promise<Account> {
    const res = await fetch(`${apiUrl}/v2/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'handoff bench' }) });
    if (!res.ok) throw new Error(`sign-up: ${res.status} ${await res.text()}`);
    return new Account(apiUrl, ((await res.json()) as { api_key: string }).api_key);
  }

  async api<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.apiUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** The account's event stream (GET /v2/events, Server-Sent Events), kept open for the run. */
class ScaleEvents {
  readonly events: ScaleEvent[] = [];
  #abort = new AbortController();
  #reading: Promise<void>;

  constructor(account: Account, dbId: string) {
    this.#reading = (async () => {
      const res = await fetch(`${account.apiUrl}/v2/events`, { headers: { authorization: `Bearer ${account.key}` }, signal: this.#abort.signal });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!type?.startsWith('db.scale.') || !data) continue;
          const event = JSON.parse(data) as { db_id: string; data: ScaleEvent['data'] };
          if (event.db_id === dbId) this.events.push({ type, at: Date.parse(event.data.updated_at), data: event.data });
        }
      }
    })().catch(() => undefined);
  }

  /** The handoff that began at the `index`-th PREPARING, once it ended. */
  handoff(index: number): HandoffRecord | null {
    const starts = this.events.map((e, i) => (e.type === 'db.scale.preparing' ? i : -1)).filter((i) => i >= 0);
    const start = starts[index];
    if (start === undefined) return null;
    const own = this.events.slice(start, starts[index + 1] ?? this.events.length);
    const end = own.find((e) => e.type === 'db.scale.stable' || e.type === 'db.scale.failed');
    if (!end) return null;
    const frozen = own.find((e) => e.type === 'db.scale.frozen');
    const lifted = own.find((e) => (e.type === 'db.scale.route_switched' || e.type === 'db.scale.failed') && !e.data.freeze_new_checkouts);
    return {
      to: '',
      result: end.type === 'db.scale.stable' ? 'stable' : 'failed',
      reason: end.data.scale_failure_reason,
      freezeMs: frozen && lifted ? lifted.at - frozen.at : 0,
      totalMs: end.at - own[0]!.at,
      frozenAt: frozen?.at ?? Number.NaN,
      liftedAt: lifted?.at ?? Number.NaN,
      steps: {},
    };
  }

  close(): Promise<void> {
    this.#abort.abort();
    return this.#reading;
  }
}

/** `pgwake_handoff_step_seconds_sum` by step, ms: one handoff at a time, so the change over a handoff is its own step times. */
async function stepSums(metricsPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const sums: Record<string, number> = {};
  for (const m of text.matchAll(/^pgwake_handoff_step_seconds_sum\{step="([a-z_]+)"\} (\S+)$/gm)) sums[m[1]!] = Number(m[2]) * 1000;
  return sums;
}

/** `CLIENTS` clients through the gateway committing one numbered row at a time; every commit's time and every error kept. */
class CommitLoad {
  readonly commits: number[] = [];
  readonly errors: { at: number; code: string }[] = [];
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(private readonly target: pg.ClientConfig) {}

  async start(): Promise<void> {
    const c = new pg.Client(this.target);
    await c.connect();
    await c.query('CREATE TABLE IF NOT EXISTS ledger (client int, seq int, PRIMARY KEY (client, seq))');
    await c.end();
    for (let i = 0; i < CLIENTS; i++) this.#loops.push(this.#client(i));
  }

  async #client(id: number): Promise<void> {
    let client: pg.Client | null = null;
    for (let seq = 1; !this.#stopped; seq++) {
      try {
        if (!client) {
          client = new pg.Client(this.target);
          client.on('error', () => undefined);
          await client.connect();
        }
        await client.query('INSERT INTO ledger (client, seq) VALUES ($1, $2)', [id, seq]);
        this.commits.push(Date.now());
      } catch (err) {
        this.errors.push({ at: Date.now(), code: (err as { code?: string }).code ?? 'connection' });
        await client?.end().catch(() => undefined);
        client = null;
        await sleep(50);
      }
    }
    await client?.end().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
  }

  /** Commits per second in each BUCKET_MS bucket from `from`. */
  tpsSeries(from: number, to: number): [number, number][] {
    const buckets = new Array<number>(Math.ceil((to - from) / BUCKET_MS)).fill(0);
    for (const t of this.commits) {
      const i = Math.floor((t - from) / BUCKET_MS);
      if (i >= 0 && i < buckets.length) buckets[i]!++;
    }
    return buckets.map((n, i) => [(i * BUCKET_MS) / 1000, (n * 1000) / BUCKET_MS]);
  }
}

interface ModeResult {
  mode: string;
  handoffs: HandoffRecord[];
  errors: { at: number; code: string }[];
  commits: number;
  baselineTps: number;
  /** Per handoff: the lowest 100 ms TPS from the freeze to 0.5 s after its lift, over the baseline. */
  dips: number[];
  /** Per handoff: the TPS of the second from the freeze on, over the baseline (what a 1 s monitoring graph shows). */
  secondDips: number[];
  chart: LineChart;
}

async function runMode(pgwake: PgwakeProcess, account: Account, mode: 'transaction' | 'session', rounds: number, progress: (m: string, f: number) => void, base: number): Promise<ModeResult> {
  const tenant = `handoff-${mode}`;
  const login = await account.api<{ pg_user: string; pg_password: string }>('POST', '/v2/tenants', { name: tenant });
  const created = await account.api<{ id: string }>('POST', `/v2/tenants/${tenant}/dbs`, { name: 'app', pool_mode: mode, start_immediately: true, suspend_timeout_seconds: 3600 });
  const db: BenchDb = { id: created.id, name: 'app', pgUser: login.pg_user, pgPassword: login.pg_password };
  const events = new ScaleEvents(account, db.id);
  await sleep(200); // the stream is open before the first handoff
  const load = new CommitLoad({ ...pgwake.gatewayTarget(db), ssl: false });
  await load.start();
  const t0 = Date.now();
  await sleep(2000);
  const handoffs: HandoffRecord[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const to = i % 2 === 0 ? 'L2' : 'L1';
      progress(`${mode} mode: handoff ${i + 1}/${rounds} to ${to}`, base + (i / rounds) * 0.5);
      const sumsBefore = await stepSums(pgwake.metricsPort);
      await account.api('PATCH', `/v2/tenants/${tenant}/dbs/app`, { size: to });
      const deadline = Date.now() + 120_000;
      let record: HandoffRecord | null = null;
      while (!(record = events.handoff(i)) && Date.now() < deadline) await sleep(50);
      if (!record) throw new Error(`${mode} mode: handoff ${i + 1} did not end within 120 s`);
      const sumsAfter = await stepSums(pgwake.metricsPort);
      const steps = Object.fromEntries(Object.keys(sumsAfter).map((k) => [k, sumsAfter[k]! - (sumsBefore[k] ?? 0)]));
      handoffs.push({ ...record, to, steps: record.result === 'stable' ? steps : {} });
      // A failed handoff leaves the db at its profile: ask for the same one again next round.
      if (record.result === 'failed') await sleep(200);
      await sleep(1500); // steady state again before the next one
    }
  } finally {
    await load.stop();
    await events.close();
  }
  const t1 = Date.now();
  const series = load.tpsSeries(t0, t1);
  const inWindow = (x: number) => handoffs.some((h) => x * 1000 + t0 >= h.frozenAt - 1000 && x * 1000 + t0 <= h.liftedAt + 1000);
  const baselineTps = median(series.filter(([x]) => !inWindow(x) && x >= 1).map(([, y]) => y));
  const dips = handoffs
    .filter((h) => Number.isFinite(h.frozenAt))
    .map((h) => {
      const during = series.filter(([x]) => x * 1000 + t0 >= h.frozenAt - BUCKET_MS && x * 1000 + t0 <= h.liftedAt + 500).map(([, y]) => y);
      return during.length > 0 ? Math.min(...during) / baselineTps : 1;
    });
  const secondDips = handoffs
    .filter((h) => Number.isFinite(h.frozenAt))
    .map((h) => load.commits.filter((c) => c >= h.frozenAt && c < h.frozenAt + 1000).length / baselineTps);
  return {
    mode,
    handoffs,
    errors: load.errors,
    commits: load.commits.length,
    baselineTps,
    dips,
    secondDips,
    chart: {
      id: `tps-${mode}`,
      title: `Commits per second through the gateway during handoffs (${mode} mode, ${CLIENTS} clients, 100 ms buckets)`,
      xLabel: 'seconds',
      yLabel: 'commits/s',
      series: [{ name: 'commits/s', points: series }],
      markers: handoffs.filter((h) => Number.isFinite(h.frozenAt)).map((h) => ({ x: (h.frozenAt - t0) / 1000, label: `→${h.to}` })),
    },
  };
}

/**
 * Handoffs under a write load through the gateway: 20 clients commit numbered
 * rows while the db moves between L1 and L2 again and again (PATCH size), in
 * both pool modes. Per handoff the catalog's own events give the freeze window
 * (FROZEN written to the freeze lifted) and the whole handoff; the clients give
 * the TPS dip and every error they saw.
 */
export const handoffScenario: Scenario = {
  name: 'handoff',
  title: 'Handoff under load: freeze window, TPS dip and client errors at -c 20',
  async run(ctx) {
    // Quick: 2 per mode (a handoff and its way back), the freeze window and dip of each still timed.
    const rounds = ctx.quick ? 2 : 20;
    ctx.progress('starting pgwake', 0);
    const pgwake = await PgwakeProcess.start({ PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '0', PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_UP_SECONDS: '0', PGWAKE_SCALE_DOWN_COOLDOWN_AFTER_DOWN_SECONDS: '0' });
    try {
      const account = await Account.signUp(pgwake.apiUrl);
      const results: ModeResult[] = [];
      for (const [i, mode] of (['transaction', 'session'] as const).entries()) results.push(await runMode(pgwake, account, mode, rounds, ctx.progress, i * 0.5));
      const ms = (v: number) => round(v, 0);
      return {
        tables: [
          {
            title: `${rounds} handoffs per pool mode (L1 ⇄ L2), ${CLIENTS} clients committing through the gateway; freeze window = FROZEN written to freeze lifted (catalog event times)`,
            columns: ['pool mode', 'stable / failed', 'freeze p50 ms', 'freeze p99 ms', 'freeze max ms', 'handoff p50 ms', 'TPS (steady)', 'TPS of the second from the freeze, p50 / min (× steady)', 'lowest 100 ms TPS, p50 (× steady)', 'client errors'],
            rows: results.map((r) => {
              const ok = r.handoffs.filter((h) => h.result === 'stable');
              const freezes = ok.map((h) => h.freezeMs);
              return [
                r.mode,
                `${ok.length} / ${r.handoffs.length - ok.length}`,
                ms(percentile(freezes, 50)),
                ms(percentile(freezes, 99)),
                ms(Math.max(...freezes)),
                ms(median(ok.map((h) => h.totalMs))),
                ms(r.baselineTps),
                `${round(median(r.secondDips), 2)} / ${round(Math.min(...r.secondDips), 2)}`,
                round(median(r.dips), 2),
                r.errors.length === 0 ? 0 : `${r.errors.length} (${[...new Set(r.errors.map((e) => e.code))].join(', ')})`,
              ];
            }),
          },
          {
            title: 'Freeze window by step (the autoscaler’s own timing, pgwake_handoff_step_seconds), stable handoffs: p50 / p99 ms',
            columns: ['pool mode', ...STEP_NAMES],
            rows: results.map((r) => {
              const ok = r.handoffs.filter((h) => h.result === 'stable' && Object.keys(h.steps).length > 0);
              return [r.mode, ...STEP_NAMES.map((step) => (ok.length === 0 ? '—' : `${round(percentile(ok.map((h) => h.steps[step] ?? 0), 50), 1)} / ${round(percentile(ok.map((h) => h.steps[step] ?? 0), 99), 1)}`))];
            }),
          },
          {
            title: 'Failed handoffs by reason',
            columns: ['pool mode', 'reason', 'count'],
            rows: results.flatMap((r) => {
              const counts = new Map<string, number>();
              for (const h of r.handoffs) if (h.result === 'failed') counts.set(h.reason ?? 'unknown', (counts.get(h.reason ?? 'unknown') ?? 0) + 1);
              return counts.size === 0 ? [[r.mode, '—', 0]] : [...counts].map(([reason, n]) => [r.mode, reason, n]);
            }),
          },
        ],
        data: Object.fromEntries(results.map((r) => [r.mode, { handoffs: r.handoffs, errors: r.errors, commits: r.commits, baselineTps: r.baselineTps, dips: r.dips, secondDips: r.secondDips }])),
        charts: results.map((r) => r.chart),
        notes: [
          'Goal (issue 5): freeze window p50 ≤ 100 ms, p99 ≤ 500 ms at -c 20; zero client errors in transaction mode.',
          'The freeze window spans: the barrier (gateways drain in-flight checkouts), the CUTOVER write, the fence (the old writer refuses new connections and its client sessions end), the wait until the candidate has the old writer’s last WAL, the promote, and the write that switches the route and lifts the freeze.',
        ],
      };
    } finally {
      await pgwake.stop();
    }
  },
};
