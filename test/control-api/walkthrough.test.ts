import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, eventually, expectError } from './client.js';
import { processesMentioning } from './processes.js';

// The walk-through, through the HTTP API with a real client and against the compute with `pg`.
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({}, ['autoscaler', 'control-api']);
});
afterAll(async () => {
  await stack?.destroy();
});

/** Connects to the db's compute directly, as the tenant role with its internal password (the gateway's way in). */
async function connectToCompute(dbId: string): Promise<pg.Client> {
  const db = await stack.ctx.catalog.dbs.byId(dbId);
  expect(db?.state).toBe('running');
  const tenant = await stack.ctx.catalog.tenants.byId(db!.tenant_id);
  const client = new pg.Client({
    host: db!.compute_host!,
    port: db!.compute_port!,
    user: tenant!.pg_user,
    password: stack.ctx.secrets.internalRolePassword(tenant!.pg_user),
    database: db!.name,
  });
  await client.connect();
  return client;
}

it('create tenant → create db (suspended, nothing runs) → resume → write → suspend → resume → the row is there → delete → 404', async () => {
  const me = await new ApiClient(stack.controlApi!.url).signUp('walk-through');

  const tenant = await me.post('/v2/tenants', { name: 'acme' });
  expect(tenant.status).toBe(201);

  const created = await me.post('/v2/tenants/acme/dbs', { name: 'app', size: 'L1' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const id: string = created.body.id;
  expect(created.body).toMatchObject({ tenant: 'acme', name: 'app', state: 'suspended', size: 'L1', current_scale: 0, target_scale: 0 });
  expect(await processesMentioning(id)).toEqual([]);

  const resumed = await me.post(`/v2/dbs/${id}/resume`);
  expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
  expect(resumed.body).toMatchObject({ id, state: 'running', current_scale: 1 });
  expect((await processesMentioning(id)).length).toBeGreaterThan(0);

  let client = await connectToCompute(id);
  expect((await client.query('SELECT current_user AS u, current_database() AS d')).rows[0]).toEqual({ u: tenant.body.pg_user, d: 'app' });
  await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
  await client.query("INSERT INTO notes VALUES (1, 'kept across suspend')");
  await client.end();

  const suspended = await me.post(`/v2/dbs/${id}/suspend`);
  expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
  expect(suspended.body).toMatchObject({ id, state: 'suspended', current_scale: 0 });
  expect(await processesMentioning(id)).toEqual([]);
  expect((await stack.ctx.catalog.dbs.byId(id))?.compute_port).toBeNull();

  expect((await me.post(`/v2/dbs/${id}/resume`)).body.state).toBe('running');
  client = await connectToCompute(id);
  expect((await client.query('SELECT id, body FROM notes')).rows).toEqual([{ id: 1, body: 'kept across suspend' }]);
  await client.end();

  const deleting = await me.delete('/v2/tenants/acme/dbs/app');
  expect(deleting.status).toBe(202);
  expect(deleting.body).toMatchObject({ id, state: 'deleting' });
  await eventually(async () => (await me.get(`/v2/dbs/${id}`)).status === 404, 30_000, 'the deleted db to be 404');
  expectError(await me.get('/v2/tenants/acme/dbs/app'), 404, 'not_found');
  expect(await processesMentioning(id)).toEqual([]);
  expect((await me.get('/v2/tenants/acme/dbs')).body).toEqual({ dbs: [] });
});
