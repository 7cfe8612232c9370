import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';

/** pool_mode and pool_size through the control API, as a user sets them, and what the gateway does with them. */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.destroy();
});

async function api<T = any>(method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(stack.controlApi!.url + path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

describe('pool settings through the control API', () => {
  it('describe shows pool_mode and pool_size; PATCH changes them and the gateway pools by them', async () => {
    const { body: account } = await api('POST', '/v2/accounts', null, { name: 'pool-settings' });
    const key = account.api_key as string;
    const { body: tenant } = await api('POST', '/v2/tenants', key, { name: 'pooled' });
    const created = await api('POST', '/v2/tenants/pooled/dbs', key, { name: 'app' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ pool_mode: 'session', pool_size: null });

    const patched = await api('PATCH', '/v2/tenants/pooled/dbs/app', key, { pool_mode: 'transaction', pool_size: 2 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ pool_mode: 'transaction', pool_size: 2 });
    expect((await api('GET', '/v2/tenants/pooled/dbs/app', key)).body).toMatchObject({ pool_mode: 'transaction', pool_size: 2 });
    expect((await api('PATCH', '/v2/tenants/pooled/dbs/app', key, { pool_mode: 'statement' })).status).toBe(400);
    expect((await api('PATCH', '/v2/tenants/pooled/dbs/app', key, { pool_size: 0 })).status).toBe(400);

    const login = { host: '127.0.0.1', port: stack.gateway!.port, user: tenant.pg_user as string, password: tenant.pg_password as string, database: 'app' };
    const clients = Array.from({ length: 6 }, () => new pg.Client(login));
    await Promise.all(clients.map((c) => c.connect()));
    const pids = new Set<number>();
    for (let i = 0; i < 4; i++) for (const r of await Promise.all(clients.map((c) => c.query<{ pid: number }>('select pg_backend_pid() as pid')))) pids.add(r.rows[0]!.pid);
    expect(pids.size).toBeLessThanOrEqual(2);

    // Back to session mode: new connections get their own server connection again (those connected keep theirs).
    await api('PATCH', '/v2/tenants/pooled/dbs/app', key, { pool_mode: 'session', pool_size: null });
    const own = Array.from({ length: 4 }, () => new pg.Client(login));
    await Promise.all(own.map((c) => c.connect()));
    const ownPids = new Set((await Promise.all(own.map((c) => c.query<{ pid: number }>('select pg_backend_pid() as pid')))).map((r) => r.rows[0]!.pid));
    expect(ownPids.size).toBe(4);
    await Promise.all([...clients, ...own].map((c) => c.end()));
  });
});
