import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { INTERNAL_SUPERUSER } from '../../core/index.js';
import { ApiClient } from '../control-api/client.js';
import { CapturedLogs } from '../support/captured-logs.js';
import { startTestStack, type TestStack } from '../support/stack.js';


const logs = new CapturedLogs();
const secretKeyHex = randomBytes(32).toString('hex');
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_LOG_LEVEL: 'debug', PGWAKE_SECRET_KEY: secretKeyHex }, undefined, { logDestination: logs });
});
afterAll(async () => {
  await stack?.destroy();
});

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('a full run logs every connection outcome, wake, suspend and handoff stage with its ids, and never a secret', async () => {
  const anon = new ApiClient(stack.controlApi!.url);
  const signUp = await anon.post('/v2/accounts', { name: 'logs' });
  expect(signUp.status).toBe(201);
  const apiKey: string = signUp.body.api_key;
  const me = anon.withKey(apiKey);
  const tenant = await me.post('/v2/tenants', { name: 'acme' });
  expect(tenant.status).toBe(201);
  const { pg_user: pgUser, pg_password: password } = tenant.body;
  const created = await me.post('/v2/tenants/acme/dbs', { name: 'app' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const dbId: string = created.body.id;
  expect((await me.post('/v2/tenants/acme/dbs/app/roles', { name: 'ana', kind: 'oauth' })).status).toBe(201);

  const port = stack.gateway!.port;
  // The password through the gateway (wakes the db), then a wrong one.
  const client = new pg.Client({ host: '127.0.0.1', port, user: pgUser, password, database: 'app' });
  await client.connect();
  await client.query('CREATE TABLE t (x int)');
  await client.end();
  const wrong = new pg.Client({ host: '127.0.0.1', port, user: pgUser, password: `${password}x`, database: 'app' });
  await expect(wrong.connect()).rejects.toMatchObject({ code: '28P01' });

  // An OAuth token over TLS.
  const credential = await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' });
  expect(credential.status, JSON.stringify(credential.body)).toBe(201);
  const token: string = credential.body.token;
  const tokenClient = new pg.Client({ host: '127.0.0.1', port, user: 'ana', password: token, database: 'app', options: `endpoint=${dbId}`, ssl: { rejectUnauthorized: false } });
  await tokenClient.connect();
  expect((await tokenClient.query('SELECT current_user AS u')).rows[0].u).toBe('ana');
  await tokenClient.end();

  // Suspend, resume, then a handoff to L2.
  expect((await me.post(`/v2/dbs/${dbId}/suspend`)).status).toBeLessThan(300);
  await until('suspended', async () => (await me.get(`/v2/dbs/${dbId}`)).body.state === 'suspended');
  expect((await me.post(`/v2/dbs/${dbId}/resume`)).status).toBeLessThan(300);
  await until('running', async () => (await me.get(`/v2/dbs/${dbId}`)).body.state === 'running');
  expect((await me.patch('/v2/tenants/acme/dbs/app', { size: 'L2' })).status).toBe(200);
  await until('handoff to L2', async () => {
    const d = (await me.get(`/v2/dbs/${dbId}`)).body;
    return d.scale_state === 'STABLE' && d.current_profile === 'L2';
  });
  const after = new pg.Client({ host: '127.0.0.1', port, user: pgUser, password, database: 'app' });
  await after.connect();
  await after.query('SELECT count(*) FROM t');
  await after.end();

  const lines = await until('the last connection closed line', async () => {
    const all = logs.lines();
    return all.filter((l) => l.msg === 'connection closed' && l.db_id === dbId).length >= 3 && all;
  }, 10_000);

  // Secrets: none of them, anywhere in the text (also not inside a message or an error).
  const secrets: Record<string, string> = {
    tenant_password: password,
    api_key: apiKey,
    token,
    token_signature: token.split('.')[2]!,
    internal_superuser_password: stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER),
    internal_tenant_password: stack.ctx.secrets.internalRolePassword(pgUser),
    internal_role_password: stack.ctx.secrets.dbRolePassword(dbId, 'ana'),
    secret_key_hex: secretKeyHex,
  };
  for (const [name, secret] of Object.entries(secrets)) {
    expect(secret.length, name).toBeGreaterThanOrEqual(16);
    expect(logs.text.includes(secret), `${name} appears in the logs`).toBe(false);
  }
  expect(lines.length).toBeGreaterThan(20);

  // Connection outcomes: one line per connection, with conn_id; routed ones with db_id.
  const closed = lines.filter((l) => l.msg === 'connection closed');
  expect(closed.every((l) => typeof l.conn_id === 'string' && typeof l.outcome === 'string')).toBe(true);
  expect(new Set(closed.map((l) => l.conn_id)).size).toBe(closed.length);
  const relayed = closed.filter((l) => l.outcome === 'relayed' && l.db_id === dbId);
  expect(relayed.length).toBeGreaterThanOrEqual(3); // password, token, after the handoff
  expect(closed.some((l) => l.outcome !== 'relayed' && l.outcome !== 'client_gone')).toBe(true); // the wrong password
  const refused = lines.find((l) => l.msg === 'connection refused' && l.sqlstate === '28P01');
  expect(refused?.conn_id).toEqual(expect.any(String));

  // Wakes and suspends, with db_id.
  expect(lines.filter((l) => l.msg === 'db running' && l.db_id === dbId).length).toBeGreaterThanOrEqual(2); // first connection, resume
  expect(lines.some((l) => l.msg === 'db suspended' && l.db_id === dbId)).toBe(true);

  // Every handoff stage, with db_id and scale_state.
  const stages = lines.filter((l) => l.msg === 'handoff stage' && l.db_id === dbId).map((l) => l.scale_state);
  expect(stages).toEqual(['PREPARING', 'CATCHING_UP', 'FROZEN', 'CUTOVER', 'STABLE']);
});
