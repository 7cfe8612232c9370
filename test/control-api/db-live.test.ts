import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient } from './client.js';

let stack: TestStack;
let me: ApiClient;
let password: string;
let pgUser: string;

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '30', PGWAKE_DEFAULT_SUSPEND_TIMEOUT_SECONDS: '300' });
  me = await new ApiClient(stack.controlApi!.url).signUp('live');
  const tenant = await me.post('/v2/tenants', { name: 'acme' });
  expect(tenant.status).toBe(201);
  password = tenant.body.pg_password;
  pgUser = tenant.body.pg_user;
});
afterAll(async () => {
  await stack?.destroy();
});

/** Polls the describe until `ok` holds (activity reports arrive each second). */
async function describeUntil(path: string, ok: (body: any) => boolean, timeoutMs = 20_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let body: any;
  for (;;) {
    const res = await me.get(path);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    body = res.body;
    if (ok(body)) return body;
    if (Date.now() > until) throw new Error(`describe never matched: ${JSON.stringify(body.live)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('describe carries live figures: connections and transactions through the gateway, the last wake, the last handoff', async () => {
  const created = await me.post('/v2/tenants/acme/dbs', { name: 'app', pool_mode: 'transaction' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id: string = created.body.id;
  expect(created.body).not.toHaveProperty('live'); // create answers the lifecycle fields only

  const fresh = (await me.get(`/v2/dbs/${id}`)).body;
  expect(fresh.state).toBe('suspended');
  expect(fresh.live).toEqual({ client_connections: 0, checkouts_in_flight: 0, checkouts_waiting: 0, open_transactions: 0, last_wake_seconds: null, last_wake_at: null, last_handoff: null });

  // The first connection wakes the db; it shows in client_connections, and the wake in last_wake_seconds.
  const client = new pg.Client({ host: '127.0.0.1', port: stack.gateway!.port, user: pgUser, password, database: 'app' });
  await client.connect();
  try {
    await client.query('SELECT 1');
    // Transaction mode: an idle client holds no checkout (reports come each second; one may predate the SELECT's end).
    const woken = await describeUntil(`/v2/dbs/${id}`, (b) => b.live.client_connections === 1 && b.live.checkouts_in_flight === 0);
    expect(woken.state).toBe('running');
    expect(woken.live.last_wake_seconds).toBeGreaterThan(0);
    expect(woken.live.last_wake_seconds).toBeLessThan(60);
    expect(Date.parse(woken.live.last_wake_at)).toBeGreaterThan(Date.parse(created.body.created_at));

    // An open transaction holds a checkout; the tenant-scoped describe shows the same.
    await client.query('BEGIN');
    await client.query('SELECT 1');
    const busy = await describeUntil('/v2/tenants/acme/dbs/app', (b) => b.live.open_transactions === 1);
    expect(busy.live).toMatchObject({ client_connections: 1, checkouts_in_flight: 1, open_transactions: 1 });
    await client.query('COMMIT');
    await describeUntil(`/v2/dbs/${id}`, (b) => b.live.open_transactions === 0 && b.live.checkouts_in_flight === 0);

    // A handoff by PATCH size: in progress, then succeeded L1 -> L2.
    expect((await me.patch('/v2/tenants/acme/dbs/app', { size: 'L2' })).status).toBe(200);
    const handedOff = await describeUntil(`/v2/dbs/${id}`, (b) => b.live.last_handoff?.result === 'succeeded', 60_000);
    expect(handedOff.live.last_handoff).toMatchObject({ result: 'succeeded', reason: null, from_profile: 'L1', to_profile: 'L2' });
    expect(handedOff.current_profile).toBe('L2');
    // The client stayed connected through the handoff.
    expect((await client.query('SELECT 2 AS two')).rows[0].two).toBe(2);
    expect(handedOff.live.client_connections).toBe(1);
  } finally {
    await client.end();
  }
  await describeUntil(`/v2/dbs/${id}`, (b) => b.live.client_connections === 0);

  // OpenAPI names the describe's shape.
  const doc = (await me.get('/openapi.json')).body;
  expect(doc.components.schemas.DbDescribe.properties.live.properties).toHaveProperty('last_handoff');
  expect(doc.paths['/v2/dbs/{id}'].get.responses['200'].content['application/json'].schema.$ref).toMatch(/DbDescribe/);
});
