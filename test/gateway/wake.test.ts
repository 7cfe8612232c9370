import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, PROFILES } from '../../core/index.js';
import { ScramClientKeyCache } from '../../gateway/auth/scram-client.js';
import { ComputeRoutes } from '../../gateway/compute-routes.js';
import { ComputeSockets } from '../../gateway/compute-sockets.js';
import { connectCompute } from '../../gateway/connect-compute.js';
import { startGateway } from '../../gateway/index.js';
import { sendCancelRequest } from '../support/cancel-request.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, metricsText, pgClient, sample, startGatewayStack, startsOf, waitFor, type TenantDb } from './support.js';

/** Wake on first connect, one start for many clients, activity for the idle suspender, and the races around them. */
let stack: TestStack;

beforeAll(async () => {
  stack = await startGatewayStack({ PGWAKE_IDLE_CHECK_INTERVAL_MS: '200' });
});

afterAll(async () => {
  await stack?.destroy();
});

const activityOf = async (dbId: string) => (await stack.ctx.coordinator.activity()).get(dbId);

describe('waking', () => {
  it('fifty clients at once on a suspended db: one start, all fifty get in', async () => {
    // Session mode holds one compute connection per client: the smallest profile has room for fifty.
    const t = await createTenantDb(stack);
    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
    const before = await metricsText(stack);
    const clients = Array.from({ length: 50 }, () => pgClient(stack, t));
    const results = await Promise.allSettled(
      clients.map(async (c) => {
        await c.connect();
        return (await c.query<{ n: number }>('select 1 as n')).rows[0]!.n;
      }),
    );
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(failures).toEqual([]);
    expect(results.map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual(Array(50).fill(1));
    expect(await startsOf(stack, t)).toBe(1);
    // Those that arrived before the compute ran waited for it (cold); the rest found it running (warm).
    const after = await metricsText(stack);
    const delta = (kind: string) => sample(after, 'pgwake_gateway_wake_seconds_count', { kind }) - sample(before, 'pgwake_gateway_wake_seconds_count', { kind });
    expect(delta('cold')).toBeGreaterThanOrEqual(1);
    expect(delta('cold') + delta('warm')).toBe(50);
    // The autoscaler hears about them with the next report: fifty client connections on this db.
    await waitFor('fifty connections reported', async () => (await activityOf(t.db.id))?.clientConnections === 50, 3_000);
    // Connected and idle: in session mode a connection keeps its db awake, but nothing is in flight (the freeze barrier counts only requests).
    expect(await activityOf(t.db.id)).toMatchObject({ clientConnections: 50, checkoutsInFlight: 0, openTransactions: 0 });
    await Promise.all(clients.map((c) => c.end()));
    await waitFor('activity back to zero', async () => (await activityOf(t.db.id))?.clientConnections === 0, 5_000);
  });

  it('reports a first connection at once, so a db is not suspended under a client that just arrived', async () => {
    const t = await createTenantDb(stack);
    const client = pgClient(stack, t);
    const connecting = client.connect();
    // The report goes out when the connection is routed, before the compute is even up.
    await waitFor('the connection reported', async () => ((await activityOf(t.db.id))?.clientConnections ?? 0) >= 1, 2_000, 5);
    await connecting;
    await client.end();
  });

  it('suspends after its timeout with no clients, never under an idle-in-transaction client, and wakes again', async () => {
    const t = await createTenantDb(stack, { suspendTimeoutSeconds: 1 });
    const client = pgClient(stack, t);
    await client.connect();
    await client.query('begin');
    await client.query('select 1');
    // Idle in transaction for three suspend timeouts: still running.
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await client.query('commit');
    await client.end();
    await waitFor('suspended after the last client left', async () => (await dbRow(stack, t.db.id)).state === 'suspended', 15_000);
    const again = pgClient(stack, t);
    await again.connect();
    expect((await again.query('select 3 as n')).rows[0]).toEqual({ n: 3 });
    await again.end();
    expect(await startsOf(stack, t)).toBe(2);
  });

  it('a client that connects while the db is suspending waits and gets in', async () => {
    const t = await createTenantDb(stack);
    const first = pgClient(stack, t);
    await first.connect();
    await first.end();
    await waitFor('no connections', async () => (await activityOf(t.db.id))?.clientConnections === 0, 5_000);
    for (let i = 0; i < 12; i++) {
      // Make sure it runs, then race a suspend against a new client, the client arriving a little before or after.
      const warm = pgClient(stack, t);
      await warm.connect();
      await warm.end();
      const suspending = stack.ctx.coordinator.requestControl({ action: 'suspend', dbId: t.db.id }, 30_000);
      await new Promise((r) => setTimeout(r, (i % 6) * 8));
      const client = pgClient(stack, t);
      await client.connect();
      expect((await client.query('select 1 as n')).rows[0]).toEqual({ n: 1 });
      await client.end();
      await suspending;
    }
  });

  it('a compute that died behind the gateway is started again for the next client', async () => {
    const t = await createTenantDb(stack);
    const first = pgClient(stack, t);
    await first.connect();
    const pid = stack.autoscaler!.describeCompute(t.db.id).pid;
    expect(pid).toBeGreaterThan(0);
    first.on('error', () => undefined);
    process.kill(pid!, 'SIGKILL');
    const next = pgClient(stack, t);
    await next.connect();
    expect((await next.query('select 4 as n')).rows[0]).toEqual({ n: 4 });
    await next.end();
    await first.end().catch(() => undefined);
  });

  it('cancels with the gateway key sent by hand, and not with the compute key', async () => {
    const t = await createTenantDb(stack);
    const client = pgClient(stack, t);
    await client.connect();
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    const computePid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    expect(computePid).not.toBe(processID);
    const cancel = (pidToSend: number, key: number) => sendCancelRequest(stack.gateway!.port, pidToSend, key);
    const sleeping = client.query('select pg_sleep(2) as slept').then(() => 'finished', (e: { code: string }) => e.code);
    await new Promise((r) => setTimeout(r, 300));
    await cancel(computePid, secretKey); // the compute's pid is no key of ours
    expect(await sleeping).toBe('finished');
    const again = client.query('select pg_sleep(30)').then(() => 'finished', (e: { code: string }) => e.code);
    await new Promise((r) => setTimeout(r, 300));
    await cancel(processID, secretKey);
    expect(await again).toBe('57014');
    await client.end();
  });
});

describe('connecting to the compute', () => {
  it('drops a known route that refuses connections and wakes the db once more', async () => {
    const t = await createTenantDb(stack);
    const warmup = pgClient(stack, t);
    await warmup.connect();
    await warmup.end();
    const running = await dbRow(stack, t.db.id);
    // What a gateway would hold if it missed the compute's move: a port where nothing listens now, and no socket file for it.
    const port = await freePort();
    const stale = { ...running, compute_port: port, compute_socket_path: path.join(path.dirname(running.compute_socket_path!), `.s.PGSQL.${port}`) };
    const routes = new ComputeRoutes(stack.ctx.coordinator);
    routes.remember(stale);
    const deps = { catalog: stack.ctx.catalog, coordinator: stack.ctx.coordinator, routes, timeoutMs: 10_000, logger: stack.ctx.logger, keys: new ScramClientKeyCache(), computeSockets: new ComputeSockets(true) };
    const login = { user: t.tenant.pg_user, password: stack.ctx.secrets.internalRolePassword(t.tenant.pg_user), database: 'app', params: {} };
    const { server, woke } = await connectCompute(stale, login, deps, new AbortController().signal);
    try {
      expect(woke).toBe(true);
      expect(server.route.port).toBe(running.compute_port);
      expect(routes.get(t.db.id)?.port).toBe(running.compute_port);
    } finally {
      server.close();
      routes.close();
    }
  });

  it('passes the compute refusing a session (53300) to the client unchanged, without retrying', async () => {
    const t = await createTenantDb(stack);
    const holders: pg.Client[] = [];
    try {
      // Three of an L1's max_connections are kept for superusers: one more session than the rest is one too many.
      const room = Number(PROFILES.L1.postgresSettings.max_connections) - 3;
      for (let i = 0; i < room; i++) {
        const c = pgClient(stack, t);
        await c.connect();
        holders.push(c);
      }
      const started = Date.now();
      const extra = pgClient(stack, t);
      extra.on('error', () => undefined);
      const err = await extra.connect().then(() => null, (e: Record<string, unknown>) => e);
      expect(err).toMatchObject({ code: '53300', severity: 'FATAL', message: 'remaining connection slots are reserved for roles with the SUPERUSER attribute' });
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await Promise.all(holders.map((c) => c.end()));
    }
  });
});

describe('when nothing can start the compute', () => {
  let bare: TestStack;
  beforeAll(async () => {
    // A gateway with no autoscaler: every wake goes unanswered.
    bare = await startTestStack({ PGWAKE_WAKE_TIMEOUT_MS: '1500' }, ['gateway']);
  });
  afterAll(async () => {
    await bare?.destroy();
  });

  it('waits for the wake timeout, then says 57P03: the compute did not start', async () => {
    const t = await createTenantDb(bare, { provision: false });
    await bare.ctx.catalog.dbs.transition(t.db.id, ['creating'], 'suspended');
    const started = Date.now();
    const client = new pg.Client({ host: '127.0.0.1', port: bare.gateway!.port, user: t.tenant.pg_user, password: t.password, database: 'app' });
    client.on('error', () => undefined);
    const err = await client.connect().then(() => null, (e: Record<string, unknown>) => e);
    const waited = Date.now() - started;
    expect(err).toMatchObject({ code: '57P03', message: 'the compute for database "app" did not start within 1500 ms' });
    expect(waited).toBeGreaterThanOrEqual(1_400);
    expect(waited).toBeLessThan(5_000);
    await waitFor('no open connections', async () => sample(await metricsText(bare), 'pgwake_gateway_connections') === 0, 3_000);
  });

  it('a client that gives up while waiting is let go, and its activity with it', async () => {
    const t = await createTenantDb(bare, { provision: false });
    await bare.ctx.catalog.dbs.transition(t.db.id, ['creating'], 'suspended');
    const client = new pg.Client({ host: '127.0.0.1', port: bare.gateway!.port, user: t.tenant.pg_user, password: t.password, database: 'app' });
    client.on('error', () => undefined);
    void client.connect().catch(() => undefined);
    await waitFor('waiting client counted', async () => (await bare.ctx.coordinator.activity()).get(t.db.id)?.clientConnections === 1, 2_000, 10);
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await waitFor('released', async () => (await bare.ctx.coordinator.activity()).get(t.db.id)?.clientConnections === 0, 3_000, 20);
  });

  it('stop() ends waiting and relayed sessions at once', async () => {
    const t = await createTenantDb(bare, { provision: false });
    await bare.ctx.catalog.dbs.transition(t.db.id, ['creating'], 'suspended');
    const extra = await startGateway({ ...bare.ctx, config: { ...bare.config, gatewayPort: 0 } });
    const waiting = new pg.Client({ host: '127.0.0.1', port: extra.port, user: t.tenant.pg_user, password: t.password, database: 'app' });
    waiting.on('error', () => undefined);
    const outcome = waiting.connect().then(() => 'connected', (e: Error) => e.message);
    await waitFor('the client waits for its wake', async () => (await bare.ctx.coordinator.activity()).get(t.db.id)?.clientConnections === 1, 2_000, 10);
    const started = Date.now();
    await extra.stop();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await outcome).not.toBe('connected');
  });
});

