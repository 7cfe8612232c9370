import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, expectError, fieldProblems } from './client.js';

// Idempotency-Key on mutating calls: a retried create returns the first result instead of creating twice.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

const key = (name: string) => ({ 'idempotency-key': `${name}-${Math.random().toString(36).slice(2)}` });

async function tenantCount(me: ApiClient): Promise<number> {
  return (await me.get('/v2/tenants')).body.tenants.length;
}

describe('a retried create', () => {
  it('returns the first status and body, marked as replayed, and creates once', async () => {
    const me = await anon.signUp('idem');
    const k = key('tenant');
    const first = await me.post('/v2/tenants', { name: 'shop' }, k);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const retry = await me.post('/v2/tenants', { name: 'shop' }, k);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('content-type')).toMatch(/application\/json/);
    expect(retry.body).toEqual(first.body); // the same password too: what the first call made
    expect(await tenantCount(me)).toBe(1);
    // Without the key the same body is a new request: here a conflict.
    expectError(await me.post('/v2/tenants', { name: 'shop' }), 409, 'conflict');
  });

  it('treats the same body with keys in another order as the same request', async () => {
    const me = await anon.signUp('idem-order');
    await me.post('/v2/tenants', { name: 'acme' });
    const k = key('db');
    const first = await me.post('/v2/tenants/acme/dbs', { name: 'app', pool_mode: 'transaction', size: 'L1' }, k);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const retry = await me.request('POST', '/v2/tenants/acme/dbs', '{"size":"L1","pool_mode":"transaction","name":"app"}', k);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect((await me.get('/v2/tenants/acme/dbs')).body.dbs).toHaveLength(1);
  });

  it('replays an error result too: the first answer is the answer', async () => {
    const me = await anon.signUp('idem-error');
    await me.post('/v2/tenants', { name: 'taken' });
    const k = key('dup');
    const first = await me.post('/v2/tenants', { name: 'taken' }, k);
    expectError(first, 409, 'conflict');
    await me.delete('/v2/tenants/taken');
    const retry = await me.post('/v2/tenants', { name: 'taken' }, k);
    expectError(retry, 409, 'conflict');
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await tenantCount(me)).toBe(0);
  });

  it('works for DELETE and for calls with no body', async () => {
    const me = await anon.signUp('idem-delete');
    await me.post('/v2/tenants', { name: 'gone' });
    const k = key('del');
    const first = await me.request('DELETE', '/v2/tenants/gone', undefined, k);
    expect(first.status).toBe(204);
    const retry = await me.request('DELETE', '/v2/tenants/gone', undefined, k);
    expect(retry.status).toBe(204);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expectError(await me.request('DELETE', '/v2/tenants/gone'), 404);
  });
});

describe('concurrent retries', () => {
  it('of a tenant create make one tenant, and every answer is the first one', async () => {
    const me = await anon.signUp('idem-race');
    const k = key('race');
    const results = await Promise.all(Array.from({ length: 10 }, () => me.post('/v2/tenants', { name: 'racy' }, k)));
    for (const r of results) {
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toEqual(results[0]!.body);
    }
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(9);
    expect(await tenantCount(me)).toBe(1);
  });

  it('of a db create (provisioning a real compute) wait for the first and get its result', async () => {
    const me = await anon.signUp('idem-db-race');
    await me.post('/v2/tenants', { name: 'acme' });
    const k = key('db-race');
    const first = me.post('/v2/tenants/acme/dbs', { name: 'slow' }, k);
    await new Promise((r) => setTimeout(r, 50));
    const retries = await Promise.all(Array.from({ length: 4 }, () => me.post('/v2/tenants/acme/dbs', { name: 'slow' }, k)));
    const original = await first;
    expect(original.status, JSON.stringify(original.body)).toBe(201);
    expect(original.body.state).toBe('suspended');
    for (const r of retries) {
      expect(r.status).toBe(201);
      expect(r.body).toEqual(original.body);
    }
    const dbs = (await me.get('/v2/tenants/acme/dbs')).body.dbs;
    expect(dbs.map((d: { id: string }) => d.id)).toEqual([original.body.id]);
  });
});

describe('misuse', () => {
  it('the same key for a different body, path or method is 422 and changes nothing', async () => {
    const me = await anon.signUp('idem-reuse');
    const k = key('reuse');
    expect((await me.post('/v2/tenants', { name: 'one' }, k)).status).toBe(201);
    const err = expectError(await me.post('/v2/tenants', { name: 'two' }, k), 422, 'idempotency_key_reused');
    expect(err.message).toContain('different request');
    expectError(await me.post('/v2/tenants/one/dbs', { name: 'x' }, k), 422, 'idempotency_key_reused');
    expectError(await me.request('DELETE', '/v2/tenants/one', undefined, k), 422, 'idempotency_key_reused');
    expect((await me.get('/v2/tenants')).body.tenants.map((t: { name: string }) => t.name)).toEqual(['one']);
  });

  it('keys are scoped per account: another account with the same key and body gets its own result', async () => {
    const a = await anon.signUp('idem-a');
    const b = await anon.signUp('idem-b');
    const k = key('shared');
    const ra = await a.post('/v2/tenants', { name: 'same' }, k);
    const rb = await b.post('/v2/tenants', { name: 'same' }, k);
    expect(ra.status).toBe(201);
    expect(rb.status).toBe(201);
    expect(rb.headers.get('idempotent-replayed')).toBeNull();
    expect(rb.body.tenant.id).not.toBe(ra.body.tenant.id);
    expect(rb.body.pg_password).not.toBe(ra.body.pg_password);
    // And a different body under that key in account b is judged against b's first request only.
    expectError(await b.post('/v2/tenants', { name: 'other' }, k), 422, 'idempotency_key_reused');
  });

  it('a malformed key is a 400 in the error shape', async () => {
    const me = await anon.signUp('idem-bad');
    expect(fieldProblems(await me.post('/v2/tenants', { name: 'x' }, { 'idempotency-key': 'has space' }))).toEqual({ 'idempotency-key': expect.stringContaining('visible ASCII') });
    expect(fieldProblems(await me.post('/v2/tenants', { name: 'x' }, { 'idempotency-key': 'k'.repeat(256) }))).toEqual({ 'idempotency-key': expect.any(String) });
    expect(await tenantCount(me)).toBe(0);
  });

  it('a request refused before it ran (invalid body) records nothing: fixed, it runs under the same key', async () => {
    const me = await anon.signUp('idem-invalid');
    const k = key('invalid');
    expect(fieldProblems(await me.post('/v2/tenants', { name: 'Bad Name' }, k))).toHaveProperty('name');
    expect((await me.post('/v2/tenants', { name: 'good-name' }, k)).status).toBe(201);
  });

  it('reads are not recorded: GET with a key runs every time', async () => {
    const me = await anon.signUp('idem-get');
    const k = key('get');
    expect((await me.get('/v2/tenants', k)).body.tenants).toEqual([]);
    await me.post('/v2/tenants', { name: 'later' });
    const again = await me.get('/v2/tenants', k);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(again.body.tenants).toHaveLength(1);
  });
});

describe('storage', () => {
  it('keeps records for 24 h, sealed: the response (with its password) is not readable in the catalog', async () => {
    const me = await anon.signUp('idem-store');
    const k = key('stored');
    const res = await me.post('/v2/tenants', { name: 'sealed' }, k);
    const { rows } = await stack.ctx.catalog.pool.query("SELECT state, status, body_sealed, extract(epoch FROM expires_at - created_at) AS ttl FROM idempotency_keys WHERE key = $1", [k['idempotency-key']]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'done', status: 201 });
    expect(Number(rows[0].ttl)).toBe(86_400);
    expect(rows[0].body_sealed).not.toContain(res.body.pg_password);
    expect(rows[0].body_sealed).not.toContain('sealed');
  });

  it('an expired key runs the request again, and expired records are purged', async () => {
    const me = await anon.signUp('idem-expire');
    const k = key('expire');
    expect((await me.post('/v2/tenants', { name: 'first' }, k)).status).toBe(201);
    await stack.ctx.catalog.pool.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1", [k['idempotency-key']]);
    // A day later the key is free again, even for another request.
    const later = await me.post('/v2/tenants', { name: 'second' }, k);
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    await stack.ctx.catalog.pool.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1", [k['idempotency-key']]);
    expect(await stack.ctx.catalog.idempotency.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect((await stack.ctx.catalog.pool.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [k['idempotency-key']])).rowCount).toBe(0);
  });

  it('a first request abandoned mid-way (its process died) is taken over once its lock has passed', async () => {
    const me = await anon.signUp('idem-abandoned');
    const accountId = (await me.get('/v2/account/profile')).body.account.id;
    const k = key('abandoned');
    // What the API computes for POST /v2/tenants {"name":"late"}: a process claimed it, then died.
    const fingerprint = createHash('sha256').update('POST\n/v2/tenants\n{"name":"late"}').digest();
    const lock = { lockMs: 60_000, ttlMs: 86_400_000 };
    expect((await stack.ctx.catalog.idempotency.claim(accountId, k['idempotency-key'], fingerprint, lock)).kind).toBe('claimed');
    expect((await stack.ctx.catalog.idempotency.claim(accountId, k['idempotency-key'], fingerprint, lock)).kind).toBe('running');
    await stack.ctx.catalog.pool.query("UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE key = $1", [k['idempotency-key']]);
    const res = await me.post('/v2/tenants', { name: 'late' }, k);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
    expect((await me.post('/v2/tenants', { name: 'late' }, k)).headers.get('idempotent-replayed')).toBe('true');
    expect(await tenantCount(me)).toBe(1);
  });
});
