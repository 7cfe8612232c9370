import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, expectError, type ApiResponse } from './client.js';
import { SseReader } from './sse.js';

// Every route of the API called with a second account's key against the first account's
// resources: 404 (exactly like something that does not exist), never 200, never 403,
// and nothing of the first account changes. A last test checks that the table below
// covers every operation in the OpenAPI document, so a new route cannot skip this.
let stack: TestStack;
let anon: ApiClient;
let owner: ApiClient;
let other: ApiClient;
let ownerAccount: string;
let ownerKeyId: string;
let otherAccount: string;
let dbId: string;

beforeAll(async () => {
  stack = await startTestStack({}, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
  const o = await anon.post('/v2/accounts', { name: 'owner', email: 'owner@example.com' });
  owner = anon.withKey(o.body.api_key);
  ownerAccount = o.body.account.id;
  ownerKeyId = o.body.api_key_id;
  const x = await anon.post('/v2/accounts', { name: 'other' });
  other = anon.withKey(x.body.api_key);
  otherAccount = x.body.account.id;
  expect((await owner.post('/v2/tenants', { name: 'private' })).status).toBe(201);
  const db = await owner.post('/v2/tenants/private/dbs', { name: 'secret' });
  expect(db.status).toBe(201);
  dbId = db.body.id;
  // The owner has usage to bill.
  expect((await owner.post(`/v2/dbs/${dbId}/resume`)).body.state).toBe('running');
  expect((await owner.post(`/v2/dbs/${dbId}/suspend`)).body.state).toBe('suspended');
  // Roles, access rules and a ban of the owner's.
  expect((await owner.post('/v2/tenants/private/dbs/secret/roles', { name: 'owner_pw', kind: 'password' })).status).toBe(201);
  expect((await owner.post('/v2/tenants/private/dbs/secret/roles', { name: 'owner_oauth', kind: 'oauth' })).status).toBe(201);
  expect((await owner.request('PUT', '/v2/tenants/private/dbs/secret/network-restrictions', { allowed_cidrs: ['10.9.0.0/16'] })).status).toBe(200);
  expect((await owner.request('PUT', '/v2/tenants/private/network-restrictions', { allowed_cidrs: ['10.0.0.0/8'] })).status).toBe(200);
  expect((await owner.request('PUT', '/v2/tenants/private/dbs/secret/connection-limits', { max_connections: 7 })).status).toBe(200);
  expect((await owner.request('PUT', '/v2/tenants/private/connection-limits', { max_connections: 9 })).status).toBe(200);
  const row = (await stack.ctx.catalog.dbs.byId(dbId))!;
  await stack.ctx.catalog.accessRules.recordFailure({ tenantId: row.tenant_id, dbId }, '198.51.100.4', { threshold: 1, windowSeconds: 60, banSeconds: 3600 });
});
afterAll(async () => {
  await stack?.destroy();
});

/**
 * A 404 that says no more than a 404 for something that never existed: the
 * same code and the same message once the name asked for is swapped.
 */
function expectSameAsMissing(res: ApiResponse, missing: ApiResponse, asked: string, missingName: string): void {
  const err = expectError(res, 404, 'not_found');
  const none = expectError(missing, 404, 'not_found');
  expect(err.message.replaceAll(asked, missingName)).toBe(none.message);
  expect(err.details).toEqual(none.details);
}

/** One check per operation, named as in the OpenAPI document. */
const CHECKS: Record<string, () => Promise<void>> = {
  'GET /healthz': async () => {
    expect((await other.get('/healthz')).body).toEqual({ status: 'ok' }); // no account data at all
  },
  'GET /metrics': async () => {
    const text = (await other.get('/metrics')).body as string;
    expect(text).not.toContain(ownerAccount);
    expect(text).not.toContain(dbId);
  },
  'POST /v2/accounts': async () => {
    const res = await anon.post('/v2/accounts', { name: 'owner', email: 'owner@example.com' });
    expect(res.status).toBe(201); // same name and email: another account, nothing of the owner's
    expect(res.body.account.id).not.toBe(ownerAccount);
    expect((await anon.withKey(res.body.api_key).get('/v2/tenants')).body.tenants).toEqual([]);
  },
  'POST /v2/accounts/{account}/api-keys': async () => {
    expectSameAsMissing(await other.post(`/v2/accounts/${ownerAccount}/api-keys`, { name: 'x' }), await other.post('/v2/accounts/acct-nonexistent0/api-keys', { name: 'x' }), ownerAccount, 'acct-nonexistent0');
  },
  'GET /v2/account/profile': async () => {
    const res = await other.get('/v2/account/profile');
    expect(res.body.account.id).toBe(otherAccount);
    expect(JSON.stringify(res.body)).not.toContain(ownerAccount);
    expect(JSON.stringify(res.body)).not.toContain(ownerKeyId);
  },
  'POST /v2/account/contact': async () => {
    expect((await other.post('/v2/account/contact', { email: 'other@example.com' })).body.id).toBe(otherAccount);
    expect((await owner.get('/v2/account/profile')).body.account.email).toBe('owner@example.com');
  },
  'POST /v2/account/delete': async () => {
    // Naming the owner's account is refused exactly as a made-up id is; nothing is deleted.
    const res = await other.post('/v2/account/delete', { confirm: ownerAccount });
    const made = await other.post('/v2/account/delete', { confirm: 'acct-nonexistent0' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe(made.body.error.message);
    expect((await owner.get('/v2/account/profile')).status).toBe(200);
  },
  'GET /v2/api-keys/me': async () => {
    expect((await other.get('/v2/api-keys/me')).body.account_id).toBe(otherAccount);
  },
  'POST /v2/api-keys/rotate': async () => {
    // Rotates the caller's own key only; the owner's key is untouched.
    const spare = anon.withKey((await other.post(`/v2/accounts/${otherAccount}/api-keys`)).body.api_key);
    const res = await spare.post('/v2/api-keys/rotate', { grace_seconds: 0 });
    expect(res.body.key.account_id).toBe(otherAccount);
    expect((await owner.get('/v2/api-keys/me')).body).toMatchObject({ id: ownerKeyId, replaced_by: null, expires_at: null });
  },
  'POST /v2/api-keys/revoke': async () => {
    expectSameAsMissing(await other.post('/v2/api-keys/revoke', { key_id: ownerKeyId }), await other.post('/v2/api-keys/revoke', { key_id: 'key-nonexistent0' }), ownerKeyId, 'key-nonexistent0');
    expect((await owner.get('/v2/api-keys/me')).body.revoked_at).toBeNull();
  },
  'GET /v2/billing/summary': async () => {
    expect((await owner.get('/v2/billing/summary')).body.dbs.map((d: { db_id: string }) => d.db_id)).toEqual([dbId]);
    const res = await other.get('/v2/billing/summary');
    expect(res.body).toMatchObject({ compute_seconds: 0, dbs: [] });
  },
  'POST /v2/tenants': async () => {
    // Tenant names are per account: the same name is the other account's own tenant.
    const res = await other.post('/v2/tenants', { name: 'private' });
    expect(res.status).toBe(201);
    expect((await owner.get('/v2/tenants/private')).body.id).not.toBe(res.body.tenant.id);
    expect((await other.delete('/v2/tenants/private')).status).toBe(204);
  },
  'GET /v2/tenants': async () => {
    expect((await other.get('/v2/tenants')).body.tenants.map((t: { name: string }) => t.name)).not.toContain('private');
  },
  'GET /v2/tenants/{tenant}': async () => {
    expectSameAsMissing(await other.get('/v2/tenants/private'), await other.get('/v2/tenants/nothere'), 'private', 'nothere');
  },
  'DELETE /v2/tenants/{tenant}': async () => {
    expectSameAsMissing(await other.delete('/v2/tenants/private?cascade=true'), await other.delete('/v2/tenants/nothere?cascade=true'), 'private', 'nothere');
  },
  'GET /v2/tenants/{tenant}/credentials': async () => {
    expectSameAsMissing(await other.get('/v2/tenants/private/credentials'), await other.get('/v2/tenants/nothere/credentials'), 'private', 'nothere');
  },
  'POST /v2/tenants/{tenant}/dbs': async () => {
    expectSameAsMissing(await other.post('/v2/tenants/private/dbs', { name: 'intruder' }), await other.post('/v2/tenants/nothere/dbs', { name: 'intruder' }), 'private', 'nothere');
  },
  'GET /v2/tenants/{tenant}/dbs': async () => {
    expectSameAsMissing(await other.get('/v2/tenants/private/dbs'), await other.get('/v2/tenants/nothere/dbs'), 'private', 'nothere');
  },
  'GET /v2/tenants/{tenant}/dbs/{db}': async () => {
    expectSameAsMissing(await other.get('/v2/tenants/private/dbs/secret'), await other.get('/v2/tenants/nothere/dbs/secret'), 'private', 'nothere');
  },
  'PATCH /v2/tenants/{tenant}/dbs/{db}': async () => {
    expectSameAsMissing(await other.patch('/v2/tenants/private/dbs/secret', { pool_mode: 'transaction' }), await other.patch('/v2/tenants/nothere/dbs/secret', { pool_mode: 'transaction' }), 'private', 'nothere');
  },
  'DELETE /v2/tenants/{tenant}/dbs/{db}': async () => {
    expectSameAsMissing(await other.delete('/v2/tenants/private/dbs/secret'), await other.delete('/v2/tenants/nothere/dbs/secret'), 'private', 'nothere');
  },
  'GET /v2/dbs/{id}': async () => {
    expectSameAsMissing(await other.get(`/v2/dbs/${dbId}`), await other.get('/v2/dbs/db-nonexistent0'), dbId, 'db-nonexistent0');
  },
  'POST /v2/dbs/{id}/resume': async () => {
    expectSameAsMissing(await other.post(`/v2/dbs/${dbId}/resume`), await other.post('/v2/dbs/db-nonexistent0/resume'), dbId, 'db-nonexistent0');
  },
  'POST /v2/dbs/{id}/suspend': async () => {
    expectSameAsMissing(await other.post(`/v2/dbs/${dbId}/suspend`), await other.post('/v2/dbs/db-nonexistent0/suspend'), dbId, 'db-nonexistent0');
  },
  'GET /v2/events': async () => {
    const stream = await SseReader.open(`${stack.controlApi!.url}/v2/events`, other.key!, 0);
    try {
      expect(stream.status).toBe(200);
      await other.post('/v2/tenants', { name: 'mine' });
      await stream.until((r) => r.events().some((e) => e.data.tenant === 'mine'), 10_000, "the other account's own event");
      const ownerTenant = (await owner.get('/v2/tenants/private')).body.id;
      const seen = JSON.stringify(stream.events());
      expect(seen).not.toContain(dbId);
      expect(seen).not.toContain(ownerTenant);
    } finally {
      stream.close();
    }
  },
};

/** The same call against the owner's tenant and against a tenant that does not exist: both 404 alike. */
async function sameAsMissingTenant(call: (tenant: string) => Promise<ApiResponse>): Promise<void> {
  expectSameAsMissing(await call('private'), await call('nothere'), 'private', 'nothere');
}

Object.assign(CHECKS, {
  'GET /.well-known/jwks.json': async () => {
    const res = await other.get('/.well-known/jwks.json');
    expect(res.status).toBe(200); // public keys only: nothing of any account
    const text = JSON.stringify(res.body);
    for (const secret of [ownerAccount, dbId, 'private', 'owner_oauth']) expect(text).not.toContain(secret);
  },
  'POST /v2/credentials': async () => {
    await sameAsMissingTenant((t) => other.post('/v2/credentials', { tenant: t, db: 'secret', role: 'owner_oauth' }));
    await sameAsMissingTenant((t) => other.post('/v2/credentials', { tenant: t, role: 'owner_oauth' }));
  },
  'POST /v2/dbs/{id}/scale/cancel': async () => {
    expectSameAsMissing(await other.post(`/v2/dbs/${dbId}/scale/cancel`), await other.post('/v2/dbs/db-nonexistent0/scale/cancel'), dbId, 'db-nonexistent0');
  },
  'GET /v2/tenants/{tenant}/dbs/{db}/roles': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/roles`)),
  'POST /v2/tenants/{tenant}/dbs/{db}/roles': () => sameAsMissingTenant((t) => other.post(`/v2/tenants/${t}/dbs/secret/roles`, { name: 'intruder', kind: 'password' })),
  'GET /v2/tenants/{tenant}/dbs/{db}/roles/{role}': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/roles/owner_pw`)),
  'PATCH /v2/tenants/{tenant}/dbs/{db}/roles/{role}': () => sameAsMissingTenant((t) => other.patch(`/v2/tenants/${t}/dbs/secret/roles/owner_pw`, { reset_password: true })),
  'DELETE /v2/tenants/{tenant}/dbs/{db}/roles/{role}': () => sameAsMissingTenant((t) => other.delete(`/v2/tenants/${t}/dbs/secret/roles/owner_pw`)),
  'GET /v2/tenants/{tenant}/dbs/{db}/network-restrictions': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/network-restrictions`)),
  'PUT /v2/tenants/{tenant}/dbs/{db}/network-restrictions': () => sameAsMissingTenant((t) => other.request('PUT', `/v2/tenants/${t}/dbs/secret/network-restrictions`, { allowed_cidrs: [] })),
  'GET /v2/tenants/{tenant}/network-restrictions': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/network-restrictions`)),
  'PUT /v2/tenants/{tenant}/network-restrictions': () => sameAsMissingTenant((t) => other.request('PUT', `/v2/tenants/${t}/network-restrictions`, { allowed_cidrs: [] })),
  'GET /v2/tenants/{tenant}/dbs/{db}/network-bans': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/network-bans`)),
  'DELETE /v2/tenants/{tenant}/dbs/{db}/network-bans/{address}': () => sameAsMissingTenant((t) => other.delete(`/v2/tenants/${t}/dbs/secret/network-bans/198.51.100.4`)),
  'GET /v2/tenants/{tenant}/dbs/{db}/ssl-enforcement': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/ssl-enforcement`)),
  'PUT /v2/tenants/{tenant}/dbs/{db}/ssl-enforcement': () => sameAsMissingTenant((t) => other.request('PUT', `/v2/tenants/${t}/dbs/secret/ssl-enforcement`, { require_ssl: true })),
  'GET /v2/tenants/{tenant}/dbs/{db}/connection-limits': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/dbs/secret/connection-limits`)),
  'PUT /v2/tenants/{tenant}/dbs/{db}/connection-limits': () => sameAsMissingTenant((t) => other.request('PUT', `/v2/tenants/${t}/dbs/secret/connection-limits`, { max_connections: 1 })),
  'GET /v2/tenants/{tenant}/connection-limits': () => sameAsMissingTenant((t) => other.get(`/v2/tenants/${t}/connection-limits`)),
  'PUT /v2/tenants/{tenant}/connection-limits': () => sameAsMissingTenant((t) => other.request('PUT', `/v2/tenants/${t}/connection-limits`, { max_connections: 1 })),
} satisfies Record<string, () => Promise<void>>);

describe("a second account's key", () => {
  for (const [op, check] of Object.entries(CHECKS)) it(op, check);

  it("leaves the first account's things as they were", async () => {
    expect((await owner.get(`/v2/dbs/${dbId}`)).body).toMatchObject({ state: 'suspended', pool_mode: 'session' });
    expect((await owner.get('/v2/tenants')).body.tenants.map((t: { name: string }) => t.name)).toEqual(['private']);
    expect((await owner.get('/v2/account/profile')).body).toMatchObject({ account: { id: ownerAccount, email: 'owner@example.com' }, tenants: 1 });
    expect((await owner.get('/v2/tenants/private/dbs/secret/roles')).body.roles.map((r: { name: string }) => r.name)).toEqual(['owner_oauth', 'owner_pw']);
    expect((await owner.get('/v2/tenants/private/dbs/secret/network-restrictions')).body.allowed_cidrs).toEqual(['10.9.0.0/16']);
    expect((await owner.get('/v2/tenants/private/network-restrictions')).body.allowed_cidrs).toEqual(['10.0.0.0/8']);
    expect((await owner.get('/v2/tenants/private/dbs/secret/ssl-enforcement')).body.require_ssl).toBe(false);
    expect((await owner.get('/v2/tenants/private/dbs/secret/connection-limits')).body.max_connections).toBe(7);
    expect((await owner.get('/v2/tenants/private/connection-limits')).body.max_connections).toBe(9);
    expect((await owner.get('/v2/tenants/private/dbs/secret/network-bans')).body.bans.map((b: { address: string }) => b.address)).toEqual(['198.51.100.4']);
  });
});

it('covers every operation of the API', async () => {
  const doc = (await anon.get('/openapi.json')).body;
  const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
  expect(Object.keys(CHECKS).sort()).toEqual(ops.sort());
});
