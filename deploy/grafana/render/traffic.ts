import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/**
 * What an afternoon of pgwake looks like, compressed into a couple of minutes:
 * three dbs of one tenant, used through two gateways — `app` in transaction mode
 * with more clients than server connections (checkouts wait), `reports` in session
 * mode with a new connection every second or so, `batch` now and then (it suspends
 * when idle and wakes cold) — plus wrong passwords and unknown dbs, describe calls,
 * a suspend by API, three handoffs of `app` (up, one that cannot drain and fails,
 * down) and, near the end, a failover of the autoscaler.
 */
export interface TrafficPlan {
  apiUrl: string;
  gatewayPorts: number[];
  seconds: number;
  /** Stops the acting autoscaler (the failover near the end). */
  failover(): Promise<void>;
  say(line: string): void;
}

interface Api {
  call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

function apiClient(baseUrl: string, key?: string): Api {
  return {
    async call(method, path, body) {
      const headers: Record<string, string> = {};
      if (key) headers.authorization = `Bearer ${key}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
    },
  };
}

export async function driveTraffic(plan: TrafficPlan): Promise<void> {
  const anon = apiClient(plan.apiUrl);
  const signUp = await anon.call('POST', '/v2/accounts', { name: 'dashboards' });
  if (signUp.status !== 201) throw new Error(`sign-up: ${signUp.status} ${JSON.stringify(signUp.body)}`);
  const api = apiClient(plan.apiUrl, signUp.body.api_key);
  const tenant = await api.call('POST', '/v2/tenants', { name: 'shop' });
  if (tenant.status !== 201) throw new Error(`tenant: ${tenant.status} ${JSON.stringify(tenant.body)}`);
  const { pg_user: user, pg_password: password } = tenant.body as { pg_user: string; pg_password: string };
  const ids: Record<string, string> = {};
  for (const [name, extra] of [
    ['app', { pool_mode: 'transaction', pool_size: 2 }],
    ['reports', {}],
    ['batch', { suspend_timeout_seconds: 12 }],
  ] as const) {
    const created = await api.call('POST', '/v2/tenants/shop/dbs', { name });
    if (created.status !== 201) throw new Error(`db ${name}: ${created.status} ${JSON.stringify(created.body)}`);
    ids[name] = created.body.id;
    if (Object.keys(extra).length > 0) {
      const patched = await api.call('PATCH', `/v2/tenants/shop/dbs/${name}`, extra);
      if (patched.status !== 200) throw new Error(`PATCH ${name}: ${patched.status} ${JSON.stringify(patched.body)}`);
    }
  }
  plan.say(`tenant shop, dbs ${Object.entries(ids).map(([n, id]) => `${n}=${id}`).join(' ')}`);

  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const running = () => elapsed() < plan.seconds;
  let gw = 0;
  const nextGateway = () => plan.gatewayPorts[gw++ % plan.gatewayPorts.length]!;
  const connect = async (database: string, pass = password) => {
    const c = new pg.Client({ host: '127.0.0.1', port: nextGateway(), user, password: pass, database, connectionTimeoutMillis: 60_000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const errors = new Map<string, number>();
  const failed = (what: string, err: unknown) => {
    const key = `${what}: ${(err as { code?: string }).code ?? (err as Error).message}`;
    errors.set(key, (errors.get(key) ?? 0) + 1);
  };

  // app: clients in a loop of short transactions; a lost connection is made again.
  const setup = await connect('app');
  await setup.query('CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, item text NOT NULL, placed_at timestamptz NOT NULL DEFAULT now())');
  await setup.end();
  const appClient = async () => {
    let c: pg.Client | null = null;
    while (running()) {
      try {
        c ??= await connect('app');
        await c.query('BEGIN');
        await c.query('INSERT INTO orders (item) VALUES ($1)', [`item-${Math.floor(Math.random() * 1000)}`]);
        await c.query('SELECT pg_sleep(0.01 + random() * 0.03)');
        await c.query('COMMIT');
        await sleep(20 + Math.random() * 60);
      } catch (err) {
        failed('app', err);
        await c?.end().catch(() => undefined);
        c = null;
        await sleep(200);
      }
    }
    await c?.end().catch(() => undefined);
  };

  // reports: a connection of its own every second or so, one bigger read each.
  const reports = async () => {
    while (running()) {
      try {
        const c = await connect('reports');
        await c.query('SELECT g, md5(g::text) FROM generate_series(1, 2000) g');
        await c.end();
      } catch (err) {
        failed('reports', err);
      }
      await sleep(700 + Math.random() * 600);
    }
  };

  // batch: a job every 25 s; between jobs it suspends for idleness and the next one wakes it.
  const batch = async () => {
    while (running()) {
      try {
        const c = await connect('batch');
        await c.query('CREATE TABLE IF NOT EXISTS runs (at timestamptz DEFAULT now())');
        await c.query('INSERT INTO runs DEFAULT VALUES');
        await c.end();
      } catch (err) {
        failed('batch', err);
      }
      await sleep(25_000);
    }
  };

  // What fails at the door, and what operators and scripts ask the API.
  const noise = async () => {
    for (let i = 0; running(); i++) {
      await connect('app', 'not-the-password').then((c) => c.end(), () => undefined);
      if (i % 3 === 0) await connect('no_such_db').then((c) => c.end(), () => undefined);
      for (const id of Object.values(ids)) await api.call('GET', `/v2/dbs/${id}`);
      await api.call('GET', '/v2/tenants/shop/dbs');
      await api.call('GET', '/v2/dbs/no-such-db');
      await sleep(4_000);
    }
  };

  const describe = async (name: string) => (await api.call('GET', `/v2/dbs/${ids[name]}`)).body as { scale_state: string; current_profile: string; scale_failure_reason: string | null };
  const until = async (name: string, test: (d: Awaited<ReturnType<typeof describe>>) => boolean, what: string, ms = 90_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const d = await describe(name);
      if (test(d)) return d;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(d)}`);
      await sleep(100);
    }
  };
  const at = async (second: number) => {
    const wait = second * 1000 - (Date.now() - started);
    if (wait > 0) await sleep(wait);
  };
  const scale = async (size: string) => {
    const res = await api.call('PATCH', '/v2/tenants/shop/dbs/app', { size });
    if (res.status !== 200) throw new Error(`PATCH size ${size}: ${res.status} ${JSON.stringify(res.body)}`);
  };

  const s = plan.seconds;
  const operator = async () => {
    await at(s * 0.17);
    plan.say('app: PATCH size L2 (a handoff under load)');
    await scale('L2');
    await until('app', (d) => d.scale_state === 'STABLE' && d.current_profile === 'L2', 'app on L2');
    plan.say('app: on L2');

    await at(s * 0.37);
    plan.say('app: a transaction stays open while app is asked for L4: the drain cannot finish');
    const holder = await connect('app');
    await holder.query('BEGIN');
    await holder.query('SELECT count(*) FROM orders');
    await scale('L4');
    const failedDb = await until('app', (d) => d.scale_state === 'FAILED', 'the handoff to fail');
    plan.say(`app: handoff FAILED, scale_failure_reason ${failedDb.scale_failure_reason}`);
    await holder.query('COMMIT');
    await holder.end();
    await until('app', (d) => d.scale_state === 'STABLE', 'the cooldown after the failure');

    await at(s * 0.5);
    plan.say('reports: POST /v2/dbs/:id/suspend (its next connection resumes it)');
    await api.call('POST', `/v2/dbs/${ids.reports}/suspend`);

    await at(s * 0.6);
    plan.say('app: PATCH size L1 (back down)');
    await scale('L1');
    await until('app', (d) => d.scale_state === 'STABLE' && d.current_profile === 'L1', 'app on L1');
    plan.say('app: on L1');

    await at(s * 0.8);
    plan.say('autoscaler-1 stops: autoscaler-2 takes the lease');
    await plan.failover();
  };

  await Promise.all([...Array.from({ length: 5 }, appClient), reports(), batch(), noise(), operator()]);
  for (const [what, n] of errors) plan.say(`client errors (retried): ${what} ×${n}`);
}
