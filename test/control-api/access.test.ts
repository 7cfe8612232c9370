import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, expectError, fieldProblems } from './client.js';
import { MANY_SIGNUPS } from './settings.js';

// The routes that say who may connect from where and for how long; the gateway's
// side of each (refusals on the wire) is tested end to end in test/gateway/access.test.ts.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack({ ...MANY_SIGNUPS, PGWAKE_IDLE_TIMEOUT_SECONDS: '3600', PGWAKE_MAX_CONNECTION_LIFE_SECONDS: '7200' }, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

async function tenantWithDb() {
  const me = await anon.signUp();
  expect((await me.post('/v2/tenants', { name: 'acme' })).status).toBe(201);
  const db = await me.post('/v2/tenants/acme/dbs', { name: 'app' });
  expect(db.status).toBe(201);
  return { me, dbId: db.body.id as string };
}

describe('network restrictions', () => {
  it('start open, take IPv4 and IPv6 CIDRs in canonical form, and can be opened again', async () => {
    const { me } = await tenantWithDb();
    const path = '/v2/tenants/acme/dbs/app/network-restrictions';
    expect((await me.get(path)).body).toEqual({ allowed_cidrs: [], updated_at: null });
    const put = await me.request('PUT', path, { allowed_cidrs: ['10.1.2.0/24', '192.0.2.7', '::1', '2001:DB8::/32', '10.1.2.0/24'] });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.allowed_cidrs).toEqual(['10.1.2.0/24', '192.0.2.7/32', '::1/128', '2001:db8::/32']);
    expect(put.body.updated_at).toEqual(expect.any(String));
    expect((await me.get(path)).body).toEqual(put.body);
    expect((await me.request('PUT', path, { allowed_cidrs: [] })).body.allowed_cidrs).toEqual([]);
  });

  it('say which entry is wrong and why', async () => {
    const { me } = await tenantWithDb();
    const path = '/v2/tenants/acme/dbs/app/network-restrictions';
    const res = await me.request('PUT', path, { allowed_cidrs: ['10.0.0.0/8', '10.0.0.1/8', 'nope', '300.1.1.1', '::1/129'] });
    expect(fieldProblems(res)).toEqual({
      'allowed_cidrs.1': '"10.0.0.1/8" has bits set right of its mask (the network is 10.0.0.0/8)',
      'allowed_cidrs.2': '"nope" is not an IPv4 or IPv6 address or CIDR',
      'allowed_cidrs.3': '"300.1.1.1" is not an IPv4 or IPv6 address or CIDR',
      'allowed_cidrs.4': '"::1/129" is not an IPv4 or IPv6 address or CIDR',
    });
    expect((await me.get(path)).body.allowed_cidrs).toEqual([]); // nothing half-applied
    expect(fieldProblems(await me.request('PUT', path, {}))).toEqual({ allowed_cidrs: 'is required' });
    expect(fieldProblems(await me.request('PUT', path, { allowed_cidrs: Array.from({ length: 101 }, (_, i) => `10.0.${i}.0/24`) }))).toEqual({ allowed_cidrs: 'must NOT have more than 100 items' });
  });

  it('exist per tenant too, apart from the db', async () => {
    const { me } = await tenantWithDb();
    const put = await me.request('PUT', '/v2/tenants/acme/network-restrictions', { allowed_cidrs: ['127.0.0.0/8'] });
    expect(put.body.allowed_cidrs).toEqual(['127.0.0.0/8']);
    expect((await me.get('/v2/tenants/acme/network-restrictions')).body.allowed_cidrs).toEqual(['127.0.0.0/8']);
    expect((await me.get('/v2/tenants/acme/dbs/app/network-restrictions')).body.allowed_cidrs).toEqual([]);
  });
});

describe('network bans', () => {
  it('list the bans failed logins made, and lift one (404 when none is in force)', async () => {
    const { me, dbId } = await tenantWithDb();
    const db = (await stack.ctx.catalog.dbs.byId(dbId))!;
    const rules = { threshold: 3, windowSeconds: 60, banSeconds: 600 };
    expect((await me.get('/v2/tenants/acme/dbs/app/network-bans')).body).toEqual({ bans: [] });
    for (let i = 0; i < 2; i++) expect(await stack.ctx.catalog.accessRules.recordFailure({ tenantId: db.tenant_id, dbId }, '203.0.113.9', rules)).toBeNull();
    const ban = await stack.ctx.catalog.accessRules.recordFailure({ tenantId: db.tenant_id, dbId }, '203.0.113.9', rules);
    expect(ban).toMatchObject({ address: '203.0.113.9', failures: 3 });
    // A failed login to a db name that does not exist counts for the tenant.
    for (let i = 0; i < 3; i++) await stack.ctx.catalog.accessRules.recordFailure({ tenantId: db.tenant_id, dbId: null }, '2001:db8::7', rules);

    const list = await me.get('/v2/tenants/acme/dbs/app/network-bans');
    expect(list.body.bans).toEqual([
      { address: '203.0.113.9', scope: 'db', failures: 3, banned_at: expect.any(String), banned_until: expect.any(String) },
      { address: '2001:db8::7', scope: 'tenant', failures: 3, banned_at: expect.any(String), banned_until: expect.any(String) },
    ]);
    const { bans } = list.body;
    expect(Date.parse(bans[0].banned_until) - Date.parse(bans[0].banned_at)).toBe(600_000);

    const lifted = await me.delete(`/v2/tenants/acme/dbs/app/network-bans/${encodeURIComponent('2001:db8::7')}`);
    expect(lifted.status).toBe(200);
    expect(lifted.body.lifted).toEqual([expect.objectContaining({ address: '2001:db8::7', scope: 'tenant' })]);
    expect((await me.get('/v2/tenants/acme/dbs/app/network-bans')).body.bans.map((b: { address: string }) => b.address)).toEqual(['203.0.113.9']);
    expectError(await me.delete(`/v2/tenants/acme/dbs/app/network-bans/${encodeURIComponent('2001:db8::7')}`), 404, 'not_found');
    expect(fieldProblems(await me.delete('/v2/tenants/acme/dbs/app/network-bans/not-an-ip'))).toEqual({ address: 'is not an IPv4 or IPv6 address' });
    // Lifting forgets the failures too: one more failure does not ban again at once.
    expect((await me.delete('/v2/tenants/acme/dbs/app/network-bans/203.0.113.9')).status).toBe(200);
    expect(await stack.ctx.catalog.accessRules.recordFailure({ tenantId: db.tenant_id, dbId }, '203.0.113.9', rules)).toBeNull();
  });
});

describe('TLS enforcement and connection limits', () => {
  it('are off and unset by default, and set per db', async () => {
    const { me } = await tenantWithDb();
    const ssl = '/v2/tenants/acme/dbs/app/ssl-enforcement';
    const limits = '/v2/tenants/acme/dbs/app/connection-limits';
    expect((await me.get(limits)).body).toEqual({
      max_connections: null,
      idle_timeout_seconds: null,
      max_connection_life_seconds: null,
      effective: { idle_timeout_seconds: 3600, max_connection_life_seconds: 7200 },
      updated_at: null,
    });
    expect((await me.get(ssl)).body).toEqual({ require_ssl: false, updated_at: null });
    expect((await me.request('PUT', ssl, { require_ssl: true })).body).toMatchObject({ require_ssl: true });
    expect((await me.get(ssl)).body.require_ssl).toBe(true);
    expect(fieldProblems(await me.request('PUT', ssl, { require_ssl: 'yes' }))).toEqual({ require_ssl: 'must be boolean' });

    const put = await me.request('PUT', limits, { max_connections: 5, idle_timeout_seconds: 0 });
    expect(put.body).toMatchObject({ max_connections: 5, idle_timeout_seconds: 0, max_connection_life_seconds: null, effective: { idle_timeout_seconds: 0, max_connection_life_seconds: 7200 } });
    // PUT is the whole setting: what is left out goes back to the default.
    expect((await me.request('PUT', limits, { max_connection_life_seconds: 60 })).body).toMatchObject({ max_connections: null, idle_timeout_seconds: null, max_connection_life_seconds: 60 });
    // The TLS setting is a field of the same rule and stays.
    expect((await me.get(ssl)).body.require_ssl).toBe(true);
    expect(fieldProblems(await me.request('PUT', limits, { max_connections: 0 }))).toEqual({ max_connections: 'must be >= 1' });

    const tenantLimits = '/v2/tenants/acme/connection-limits';
    expect((await me.get(tenantLimits)).body).toEqual({ max_connections: null, updated_at: null });
    expect((await me.request('PUT', tenantLimits, { max_connections: 20 })).body.max_connections).toBe(20);
    expect((await me.request('PUT', tenantLimits, { max_connections: null })).body.max_connections).toBeNull();
    expect(fieldProblems(await me.request('PUT', tenantLimits, {}))).toEqual({ max_connections: 'is required' });
  });
});
