import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient } from './client.js';

const run = promisify(execFile);
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_GATEWAY_HOST: '127.0.0.1' }, ['autoscaler', 'gateway', 'control-api']);
});
afterAll(async () => {
  await stack?.destroy();
});

it('the dsn_template the API hands out, with the db name filled in, connects through the gateway with psql', async () => {
  const me = await new ApiClient(stack.controlApi!.url).signUp();
  const tenant = await me.post('/v2/tenants', { name: 'shop' });
  expect(tenant.body.dsn_template).toContain(`@127.0.0.1:${stack.gateway!.port}/<db-name>?sslmode=require`);
  const db = await me.post('/v2/tenants/shop/dbs', { name: 'app' });
  expect(db.body.state).toBe('suspended');

  const dsn = tenant.body.dsn_template.replace('<db-name>', 'app');
  const { stdout } = await run('psql', [dsn, '-XAtc', 'select current_user, current_database()'], { timeout: 30_000 });
  expect(stdout.trim()).toBe(`${tenant.body.pg_user}|app`);
  // The connection woke it.
  expect((await me.get(`/v2/dbs/${db.body.id}`)).body.state).toBe('running');

  // The credentials route gives the same, working, login again.
  const again = (await me.get('/v2/tenants/shop/credentials')).body;
  expect(again.dsn_template).toBe(tenant.body.dsn_template);
});
