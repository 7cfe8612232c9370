import pg from 'pg';
import { RedisCoordinator } from '../../core/index.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sendCancelRequest } from '../support/cancel-request.js';
import { callApi as call, sample, startRole, startSharedServices, type RoleProcess, type SharedServices } from './roles.js';

// The distributed shape of DESIGN §1: every role its own process, sharing a catalog
// Postgres and coordinating through a real Redis. Two gateways, one autoscaler, one control API.
let shared: SharedServices;
let autoscaler: RoleProcess;
let gateways: RoleProcess[] = [];
let api: RoleProcess;

beforeAll(async () => {
  shared = await startSharedServices();
  autoscaler = await startRole('autoscaler', shared.env);
  gateways = await Promise.all([startRole('gateway', shared.env), startRole('gateway', shared.env)]);
  api = await startRole('control-api', shared.env);
}, 180_000);

afterAll(async () => {
  // Gateways and API first, the autoscaler (it suspends its computes) after, the shared servers last.
  await Promise.all([...gateways, api].filter(Boolean).map((p) => p.stop()));
  await autoscaler?.stop();
  await shared?.stop();
}, 120_000);

async function computeStarts(): Promise<number> {
  const body = await (await fetch(autoscaler.metricsUrl!)).text();
  return sample(body, 'pgwake_compute_starts_total', '{result="ok"}');
}

function through(gateway: RoleProcess, login: { user: string; password: string }, database: string): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: gateway.gatewayPort, user: login.user, password: login.password, database, ssl: false });
}

/** An account, tenant and db made through the control API, provisioned (suspended) by the autoscaler process. */
async function newDb(tenantName: string, settings: Record<string, unknown> = {}): Promise<{ key: string; dbId: string; login: { user: string; password: string } }> {
  const signup = await call('POST', `${api.apiUrl}/v2/accounts`, undefined, { name: tenantName });
  expect(signup.status, JSON.stringify(signup.body)).toBe(201);
  const key: string = signup.body.api_key;
  const tenant = await call('POST', `${api.apiUrl}/v2/tenants`, key, { name: tenantName });
  expect(tenant.status, JSON.stringify(tenant.body)).toBe(201);
  const created = await call('POST', `${api.apiUrl}/v2/tenants/${tenantName}/dbs`, key, { name: 'app', size: 'L1', ...settings });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const dbId: string = created.body.id;
  // Provisioning happens in the autoscaler process (asked over Redis); a new db waits suspended.
  const until = Date.now() + 60_000;
  while ((await call('GET', `${api.apiUrl}/v2/dbs/${dbId}`, key)).body.state !== 'suspended') {
    if (Date.now() > until) throw new Error('the db was not provisioned in time');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { key, dbId, login: { user: tenant.body.pg_user as string, password: tenant.body.pg_password as string } };
}

it('serves a db made through the API from either gateway, and a wake storm across both starts it once', async () => {
  expect(gateways[0]!.gatewayPort).not.toBe(gateways[1]!.gatewayPort);
  const { key, dbId, login } = await newDb('acme');

  // 12 first connections at once, half through each gateway: one wake.
  const startsBefore = await computeStarts();
  const storm = Array.from({ length: 12 }, async (_, i) => {
    const client = through(gateways[i % 2]!, login, 'app');
    await client.connect();
    try {
      return (await client.query<{ n: number }>('SELECT $1::int AS n', [i])).rows[0]!.n;
    } finally {
      await client.end();
    }
  });
  expect((await Promise.all(storm)).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  expect(await computeStarts()).toBe(startsBefore + 1);
  expect((await call('GET', `${api.apiUrl}/v2/dbs/${dbId}`, key)).body.state).toBe('running');

  // What one gateway's client writes, the other's reads.
  const writer = through(gateways[0]!, login, 'app');
  await writer.connect();
  await writer.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
  await writer.query("INSERT INTO notes VALUES (1, 'written through gateway one')");
  await writer.end();
  const reader = through(gateways[1]!, login, 'app');
  await reader.connect();
  expect((await reader.query('SELECT body FROM notes')).rows).toEqual([{ body: 'written through gateway one' }]);
  await reader.end();

  // Suspended by the API (another process, over Redis), woken by the second gateway: one more start, nothing lost.
  const suspended = await call('POST', `${api.apiUrl}/v2/dbs/${dbId}/suspend`, key);
  expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
  expect(suspended.body.state).toBe('suspended');
  const again = through(gateways[1]!, login, 'app');
  await again.connect();
  expect((await again.query('SELECT body FROM notes')).rows).toEqual([{ body: 'written through gateway one' }]);
  await again.end();
  expect(await computeStarts()).toBe(startsBefore + 2);
}, 120_000);

it('rides out a Redis outage: running dbs keep serving new connections, a wake asked meanwhile completes once Redis is back', async () => {
  const running = await newDb('outage-running');
  const asleep = await newDb('outage-asleep');
  const query = async (gateway: RoleProcess, login: { user: string; password: string }) => {
    const client = through(gateway, login, 'app');
    await client.connect();
    try {
      return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
    } finally {
      await client.end();
    }
  };
  // Both gateways learn the running db's route before Redis goes.
  expect(await Promise.all(gateways.map((g) => query(g, running.login)))).toEqual([1, 1]);
  const startsBefore = await computeStarts();

  const outage = shared.redis.restart(6_000); // down for 6 s, back without its data
  await new Promise((r) => setTimeout(r, 300));
  // Connections to a running db must not wait for Redis: they are served while it is still down.
  const served = Promise.all(gateways.map((g) => query(g, running.login)));
  expect(await Promise.race([served.then(() => 'served while Redis was down'), outage.then(() => 'Redis came back first')])).toBe('served while Redis was down');
  expect(await served).toEqual([1, 1]);
  // The suspended db's first connection needs the autoscaler, reached only through Redis: it waits, then works.
  const woken = query(gateways[1]!, asleep.login);
  await outage;
  expect(await woken).toBe(1);
  expect(await computeStarts()).toBe(startsBefore + 1);
  // After the outage, control requests flow again: the API suspends, a gateway wakes.
  const suspended = await call('POST', `${api.apiUrl}/v2/dbs/${asleep.dbId}/suspend`, asleep.key);
  expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
  expect(await query(gateways[0]!, asleep.login)).toBe(1);
}, 120_000);

it('runs several gateway workers on one port, each a gateway of its own, their metrics summed', async () => {
  const cluster = await startRole('gateway', { ...shared.env, PGWAKE_GATEWAY_WORKERS: '2' });
  try {
    const ids = /\(2 workers: (\S+), (\S+)\)/.exec(cluster.output());
    expect(ids, cluster.output()).not.toBeNull();
    expect(ids![1]).not.toBe(ids![2]);
    const { dbId, login } = await newDb('workers');
    const clients = Array.from({ length: 8 }, () => through(cluster, login, 'app'));
    const coordinator = await RedisCoordinator.connect(shared.redis.url);
    try {
      await Promise.all(clients.map((c) => c.connect()));
      expect(await Promise.all(clients.map(async (c, i) => (await c.query<{ n: number }>('SELECT $1::int AS n', [i])).rows[0]!.n))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      // Both workers report through Redis, like any two gateways, and the port's connections are shared between them.
      const perWorker = async () => {
        const reports = await coordinator.gatewayReports();
        return [ids![1], ids![2]].map((id) => reports.find((r) => r.gatewayId === id)?.dbs[dbId]?.clientConnections ?? 0);
      };
      const until = Date.now() + 10_000;
      let shares = await perWorker();
      while (shares[0]! + shares[1]! !== 8) {
        if (Date.now() > until) throw new Error(`workers reported ${shares.join(' + ')} connections, not 8`);
        await new Promise((r) => setTimeout(r, 100));
        shares = await perWorker();
      }
      expect(shares[0]).toBeGreaterThan(0);
      expect(shares[1]).toBeGreaterThan(0);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await coordinator.close();
    }
    const metrics = await (await fetch(cluster.metricsUrl!)).text();
    expect(sample(metrics, 'pgwake_gateway_connections_total', '{outcome="relayed"}')).toBe(8);
  } finally {
    expect(await cluster.stop()).toBe(0);
  }
}, 120_000);

it('refuses to run one role without the shared secret key, saying why', async () => {
  const { PGWAKE_SECRET_KEY: _, ...withoutKey } = shared.env;
  await expect(startRole('gateway', withoutKey, 30_000)).rejects.toThrow(/needs PGWAKE_SECRET_KEY, the same on every process/);
});


it('cancels a query through the other gateway: the key the client got from gateway one works at gateway two; a wrong key cancels nothing', async () => {
  const { login } = await newDb('cancels');
  const client = through(gateways[0]!, login, 'app');
  await client.connect();
  try {
    // pg keeps the BackendKeyData the gateway sent (the gateway's own key, not the compute's).
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    expect(typeof processID).toBe('number');
    let settled = false;
    const started = Date.now();
    const sleeping = client.query('SELECT pg_sleep(30)').then(
      () => ({ code: 'finished' }),
      (err: { code?: string }) => ({ code: err.code }),
    );
    void sleeping.finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 500));
    // Wrong secret (forwarded to its owner, refused there) and an unknown process id: nothing is cancelled.
    await sendCancelRequest(gateways[1]!.gatewayPort!, processID, secretKey ^ 1);
    await sendCancelRequest(gateways[1]!.gatewayPort!, processID ^ 1, secretKey);
    await sendCancelRequest(gateways[0]!.gatewayPort!, processID, secretKey ^ 1);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(settled, 'a wrong key must not cancel the query').toBe(false);
    await sendCancelRequest(gateways[1]!.gatewayPort!, processID, secretKey);
    expect(await sleeping).toEqual({ code: '57014' }); // query_canceled
    expect(Date.now() - started).toBeLessThan(10_000);
    // The session goes on after the cancel.
    expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  } finally {
    await client.end().catch(() => undefined);
  }
}, 120_000);

it('moves a db to L2 under writes through both gateways in transaction mode: no client sees an error, every acknowledged commit is kept', async () => {
  const { key, dbId, login } = await newDb('handoff-load', { pool_mode: 'transaction' });
  const setup = through(gateways[0]!, login, 'app');
  await setup.connect();
  await setup.query('CREATE TABLE ledger (client int, seq int, PRIMARY KEY (client, seq))');
  await setup.end();

  // Four writers, two through each gateway, each committing numbered rows one at a time.
  let stopped = false;
  const acked = new Map<number, number[]>();
  const errors: string[] = [];
  const writer = async (id: number) => {
    const mine: number[] = [];
    acked.set(id, mine);
    const client = through(gateways[id % 2]!, login, 'app');
    client.on('error', () => undefined);
    await client.connect();
    for (let seq = 1; !stopped; seq++) {
      try {
        await client.query('INSERT INTO ledger VALUES ($1, $2)', [id, seq]);
        mine.push(seq);
      } catch (err) {
        errors.push(`writer ${id} (gateway ${(id % 2) + 1}): ${(err as { code?: string }).code} ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await client.end().catch(() => undefined);
  };
  const writers = [0, 1, 2, 3].map(writer);
  const count = () => [...acked.values()].reduce((n, s) => n + s.length, 0);
  await new Promise((r) => setTimeout(r, 1_000));
  const beforeHandoff = count();

  const patched = await call('PATCH', `${api.apiUrl}/v2/tenants/handoff-load/dbs/app`, key, { size: 'L2' });
  expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  const started = Date.now();
  let db: any;
  for (;;) {
    db = (await call('GET', `${api.apiUrl}/v2/dbs/${dbId}`, key)).body;
    if (db.scale_state === 'STABLE' && db.current_profile === 'L2') break;
    if (db.scale_state === 'FAILED' || Date.now() - started > 60_000) throw new Error(`the handoff did not finish: ${JSON.stringify(db)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const handoffMs = Date.now() - started;
  expect(db.pool_mode).toBe('transaction');
  const duringHandoff = count() - beforeHandoff;
  await new Promise((r) => setTimeout(r, 500));
  stopped = true;
  await Promise.all(writers);

  expect(errors).toEqual([]);
  const check = through(gateways[1]!, login, 'app');
  await check.connect();
  const { rows } = await check.query<{ client: number; seq: number }>('SELECT client, seq FROM ledger');
  await check.end();
  const present = new Set(rows.map((r) => `${r.client}/${r.seq}`));
  const missing = [...acked].flatMap(([id, seqs]) => seqs.filter((seq) => !present.has(`${id}/${seq}`)));
  expect(missing).toEqual([]);
  // Each gateway's writers kept committing (through both gateways, across the move).
  expect(acked.get(0)!.length + acked.get(2)!.length).toBeGreaterThan(20);
  expect(acked.get(1)!.length + acked.get(3)!.length).toBeGreaterThan(20);
  console.log(`handoff under load: L1 → L2 in ${handoffMs} ms, ${count()} commits acknowledged (${duringHandoff} while it ran), 0 errors, 0 missing`);
}, 120_000);
