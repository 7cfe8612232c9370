import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { apiTenant, connect, currentUser, refusal, type ApiTenant } from './access-support.js';
import { sample } from './support.js';

// Who may connect from where, and for how long, as the gateway enforces it:
// bans, CIDR allowlists (IPv4 and IPv6), TLS enforcement, connection limits,
// idle timeout and maximum connection life. Every client is a real pg client.
let stack: TestStack;

beforeAll(async () => {
  // `::` listens on IPv6 and IPv4 alike, so one gateway sees clients from ::1 and from 127.0.0.1.
  stack = await startTestStack({ PGWAKE_LISTEN_HOST: '::', PGWAKE_BAN_FAILED_LOGINS: '3', PGWAKE_BAN_WINDOW_SECONDS: '60', PGWAKE_BAN_SECONDS: '600', PGWAKE_SIGNUP_RATE_LIMIT_PER_ADDRESS: '1000', PGWAKE_ALLOW_CLEARTEXT_TOKENS_ON_LOOPBACK: 'true' });
});
afterAll(async () => {
  await stack?.destroy();
});

const asTenant = (t: ApiTenant, o: Partial<pg.ClientConfig> & { tls?: boolean } = {}) => ({ user: t.pgUser, password: t.pgPassword, ...o });

describe('bans', () => {
  it('refuse an address after repeated failed logins, before any password check, until lifted', async () => {
    const t = await apiTenant(stack);
    const pw = await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'app_user', kind: 'password' });
    const role = { user: 'app_user', endpoint: t.dbId };
    for (let i = 0; i < 3; i++) expect(await refusal(stack, { ...role, password: 'guess' + i })).toMatchObject({ code: '28P01' });

    // Banned now: the right password does not help, and the refusal says why.
    const banned = await refusal(stack, { ...role, password: pw.body.password });
    expect(banned.code).toBe('28000');
    expect(banned.message).toMatch(/^address 127\.0\.0\.1 is banned from database "app" until \d{4}-.*Z after too many failed logins$/);
    // Before any password check: the client is never asked for one.
    expect(await refusal(stack, { ...role, password: undefined as unknown as string })).toMatchObject({ code: '28000' });
    // The ban is the db's: the tenant's other db, and another address (::1), are not banned.
    const other = await connect(stack, asTenant(t, { host: '::1' }));
    expect(await currentUser(other)).toBe(t.pgUser);
    await other.end();

    const bans = await t.api.get('/v2/tenants/acme/dbs/app/network-bans');
    expect(bans.body.bans).toEqual([expect.objectContaining({ address: '127.0.0.1', scope: 'db', failures: 3 })]);
    expect((await t.api.delete('/v2/tenants/acme/dbs/app/network-bans/127.0.0.1')).status).toBe(200);
    const back = await connect(stack, { ...role, password: pw.body.password });
    expect(await currentUser(back)).toBe('app_user');
    await back.end();
  });

  it("count failed tenant logins to a db name that does not exist against the tenant's every db", async () => {
    const t = await apiTenant(stack);
    for (let i = 0; i < 3; i++) expect(await refusal(stack, asTenant(t, { database: 'nosuchdb', password: 'bad', host: '::1' }))).toMatchObject({ code: '28P01' });
    const err = await refusal(stack, asTenant(t, { host: '::1' }));
    expect(err).toMatchObject({ code: '28000' });
    expect(err.message).toMatch(/^address ::1 is banned from database "app"/);
    expect((await t.api.get('/v2/tenants/acme/dbs/app/network-bans')).body.bans).toEqual([expect.objectContaining({ address: '::1', scope: 'tenant' })]);
    expect((await t.api.delete(`/v2/tenants/acme/dbs/app/network-bans/${encodeURIComponent('::1')}`)).status).toBe(200);
    await (await connect(stack, asTenant(t, { host: '::1' }))).end();
  });
});

describe('CIDR allowlists', () => {
  it('allow and deny IPv4 clients', async () => {
    const t = await apiTenant(stack);
    const path = '/v2/tenants/acme/dbs/app/network-restrictions';
    expect((await t.api.request('PUT', path, { allowed_cidrs: ['10.0.0.0/8', '2001:db8::/32'] })).status).toBe(200);
    const denied = await refusal(stack, asTenant(t));
    expect(denied).toMatchObject({ code: '28000', message: 'address 127.0.0.1 is not allowed to connect to database "app"' });
    expect(denied.hint).toMatch(/network-restrictions/);
    // Refused before the password: a wrong one gets the same answer.
    expect(await refusal(stack, asTenant(t, { password: 'wrong' }))).toMatchObject({ code: '28000' });

    expect((await t.api.request('PUT', path, { allowed_cidrs: ['10.0.0.0/8', '127.0.0.0/8'] })).status).toBe(200);
    await (await connect(stack, asTenant(t))).end();
    expect((await t.api.request('PUT', path, { allowed_cidrs: [] })).status).toBe(200);
    await (await connect(stack, asTenant(t))).end();
  });

  it('allow and deny IPv6 clients (::1)', async () => {
    const t = await apiTenant(stack);
    const path = '/v2/tenants/acme/dbs/app/network-restrictions';
    expect((await t.api.request('PUT', path, { allowed_cidrs: ['::1'] })).status).toBe(200);
    const v6 = await connect(stack, asTenant(t, { host: '::1' }));
    expect((await v6.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await v6.end();
    // Only ::1: 127.0.0.1 is another address (the listener shows it as ::ffff:127.0.0.1; the check reads it as IPv4).
    expect(await refusal(stack, asTenant(t, { host: '127.0.0.1' }))).toMatchObject({ code: '28000', message: 'address 127.0.0.1 is not allowed to connect to database "app"' });

    expect((await t.api.request('PUT', path, { allowed_cidrs: ['2001:db8::/32', '127.0.0.1'] })).status).toBe(200);
    expect(await refusal(stack, asTenant(t, { host: '::1' }))).toMatchObject({ code: '28000', message: 'address ::1 is not allowed to connect to database "app"' });
    await (await connect(stack, asTenant(t, { host: '127.0.0.1' }))).end();
  });

  it("apply the tenant's list to every db, on top of the db's own", async () => {
    const t = await apiTenant(stack);
    expect((await t.api.request('PUT', '/v2/tenants/acme/network-restrictions', { allowed_cidrs: ['::1'] })).status).toBe(200);
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/network-restrictions', { allowed_cidrs: ['127.0.0.0/8', '::1'] })).status).toBe(200);
    expect(await refusal(stack, asTenant(t, { host: '127.0.0.1' }))).toMatchObject({ code: '28000' }); // the db allows it, the tenant does not
    await (await connect(stack, asTenant(t, { host: '::1' }))).end();
  });
});

describe('TLS enforcement', () => {
  it('refuses a db’s clients without TLS once on, with a clear error', async () => {
    const t = await apiTenant(stack);
    await (await connect(stack, asTenant(t, { tls: false }))).end();
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/ssl-enforcement', { require_ssl: true })).status).toBe(200);
    expect(await refusal(stack, asTenant(t, { tls: false }))).toMatchObject({ code: '28000', message: 'database "app" accepts only TLS connections (try using sslmode=require)' });
    const secure = await connect(stack, asTenant(t, { tls: true }));
    expect(await currentUser(secure)).toBe(t.pgUser);
    await secure.end();
  });
});

describe('tokens without TLS', () => {
  it('are taken from a loopback address when PGWAKE_ALLOW_CLEARTEXT_TOKENS_ON_LOOPBACK is set, unless the db enforces TLS', async () => {
    const t = await apiTenant(stack);
    expect((await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'local_tool', kind: 'oauth' })).status).toBe(201);
    const token = (await t.api.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'local_tool' })).body.token;
    for (const host of ['127.0.0.1', '::1']) {
      const c = await connect(stack, { host, user: 'local_tool', password: token, endpoint: t.dbId, tls: false });
      expect(await currentUser(c)).toBe('local_tool');
      await c.end();
    }
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/ssl-enforcement', { require_ssl: true })).status).toBe(200);
    expect(await refusal(stack, { user: 'local_tool', password: token, endpoint: t.dbId, tls: false })).toMatchObject({ code: '28000' });
  });
});

describe('connection limits', () => {
  it('refuse the connection over a db’s limit with 53300, and take one again when a place is free', async () => {
    const t = await apiTenant(stack);
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/connection-limits', { max_connections: 2 })).status).toBe(200);
    const a = await connect(stack, asTenant(t));
    const b = await connect(stack, asTenant(t));
    const over = await refusal(stack, asTenant(t));
    expect(over).toMatchObject({ code: '53300', message: 'too many connections for database "app"', detail: 'the db allows 2 connections at once' });
    await a.end();
    await new Promise((r) => setTimeout(r, 100));
    const c = await connect(stack, asTenant(t));
    await Promise.all([b.end(), c.end()]);
  });

  it("refuse the connection over the tenant's limit across its dbs", async () => {
    const t = await apiTenant(stack);
    await t.api.post('/v2/tenants/acme/dbs', { name: 'second' });
    expect((await t.api.request('PUT', '/v2/tenants/acme/connection-limits', { max_connections: 2 })).status).toBe(200);
    const a = await connect(stack, asTenant(t));
    const b = await connect(stack, asTenant(t, { database: 'second' }));
    expect(await refusal(stack, asTenant(t, { database: 'second' }))).toMatchObject({ code: '53300', message: 'too many connections for the dbs of tenant "acme"' });
    await Promise.all([a.end(), b.end()]);
  });
});

describe('session lifetimes', () => {
  it('end a session idle longer than the idle timeout with 57P05, and leave a busy one alone', async () => {
    const t = await apiTenant(stack);
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/connection-limits', { idle_timeout_seconds: 1 })).status).toBe(200);
    const before = sample(await metricsText6(stack), 'pgwake_gateway_sessions_ended_total', { reason: 'idle_timeout' });
    const idle = await connect(stack, asTenant(t));
    const ended = new Promise<{ code?: string; message: string }>((resolve) => idle.on('error', resolve));
    // A query longer than the idle timeout is not idleness.
    const busy = await connect(stack, asTenant(t));
    expect((await busy.query('SELECT true AS slept FROM pg_sleep(2.2)')).rows).toEqual([{ slept: true }]);
    const err = await ended;
    expect(err).toMatchObject({ code: '57P05', message: 'terminating connection due to idle-session timeout' });
    await expect(idle.query('SELECT 1')).rejects.toThrow();
    await busy.end().catch(() => undefined);
    expect(sample(await metricsText6(stack), 'pgwake_gateway_sessions_ended_total', { reason: 'idle_timeout' })).toBeGreaterThanOrEqual(before + 1);
  });

  it('end a session at its maximum life with 57P01, between queries, never in the middle of one', async () => {
    const t = await apiTenant(stack);
    expect((await t.api.request('PUT', '/v2/tenants/acme/dbs/app/connection-limits', { max_connection_life_seconds: 1 })).status).toBe(200);
    const client = await connect(stack, asTenant(t));
    const ended = new Promise<{ code?: string; message: string }>((resolve) => client.on('error', resolve));
    // Runs past the maximum life: it finishes, then the session ends.
    expect((await client.query('SELECT true AS slept FROM pg_sleep(1.8)')).rows).toEqual([{ slept: true }]);
    expect(await ended).toMatchObject({ code: '57P01', message: 'terminating connection: it reached the maximum connection life of 1 s' });
  });
});

/** Metrics of a stack listening on `::`. */
async function metricsText6(s: TestStack): Promise<string> {
  const res = await fetch(`http://[::1]:${s.metricsPort}/metrics`);
  return res.text();
}
