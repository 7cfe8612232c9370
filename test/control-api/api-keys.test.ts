import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlApi } from '../../control-api/index.js';
import { hashApiKey } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';

// More keys, the key in use, rotation with a grace period, revocation, and how keys are checked.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_API_KEY_ROTATION_GRACE_SECONDS: '3600', ...MANY_SIGNUPS }, ['control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

async function signUp(name = 'keys'): Promise<{ me: ApiClient; accountId: string; keyId: string }> {
  const res = await anon.post('/v2/accounts', { name });
  expect(res.status).toBe(201);
  return { me: anon.withKey(res.body.api_key), accountId: res.body.account.id, keyId: res.body.api_key_id };
}

const API_KEY_FIELDS = ['id', 'account_id', 'name', 'prefix', 'created_at', 'last_used_at', 'expires_at', 'revoked_at', 'replaced_by'].sort();

describe('POST /v2/accounts/:account/api-keys', () => {
  it('makes another working key, shown once, stored as a hash with a visible prefix', async () => {
    const { me, accountId } = await signUp();
    const res = await me.post(`/v2/accounts/${accountId}/api-keys`, { name: 'ci deploys' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['api_key', 'key']);
    expect(Object.keys(res.body.key).sort()).toEqual(API_KEY_FIELDS);
    const { api_key: secret, key } = res.body;
    expect(secret).toMatch(/^pgw_[A-Za-z0-9_-]{32}$/);
    expect(secret.startsWith(key.prefix)).toBe(true);
    expect(key).toMatchObject({ account_id: accountId, name: 'ci deploys', expires_at: null, revoked_at: null, replaced_by: null });
    const { rows } = await stack.ctx.catalog.pool.query('SELECT * FROM api_keys WHERE id = $1', [key.id]);
    expect(Buffer.from(rows[0].key_hash).equals(hashApiKey(secret))).toBe(true);
    expect(JSON.stringify(rows[0])).not.toContain(secret.slice(key.prefix.length));
    // Never shown again: not by /me, not in the profile.
    const second = anon.withKey(secret);
    const mine = await second.get('/v2/api-keys/me');
    expect(mine.body).toMatchObject({ id: key.id, name: 'ci deploys' });
    expect(JSON.stringify(mine.body)).not.toContain(secret);
    expect(JSON.stringify((await second.get('/v2/account/profile')).body)).not.toContain(secret);
    // Keys are random: twenty of them share neither secret nor prefix.
    const many = await Promise.all(Array.from({ length: 20 }, () => me.post(`/v2/accounts/${accountId}/api-keys`)));
    expect(new Set(many.map((r) => r.body.api_key)).size).toBe(20);
    expect(new Set(many.map((r) => r.body.key.prefix)).size).toBe(20);
    expect(many.every((r) => r.status === 201 && r.body.key.name === null)).toBe(true);
  });

  it('validates the body', async () => {
    const { me, accountId } = await signUp();
    expect(fieldProblems(await me.post(`/v2/accounts/${accountId}/api-keys`, { name: '', scope: 'all' }))).toEqual({ name: expect.stringContaining('fewer than 1'), scope: 'is not a known field' });
  });
});

describe('GET /v2/api-keys/me', () => {
  it('describes the key making the call, with last_used_at once use is recorded', async () => {
    const api = await startControlApi(stack.ctx, { keyUseFlushMs: 100 });
    try {
      const res = await anon.post('/v2/accounts', { name: 'me' });
      const me = new ApiClient(api.url, res.body.api_key);
      const first = await me.get('/v2/api-keys/me');
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ id: res.body.api_key_id, prefix: res.body.api_key_prefix, account_id: res.body.account.id, revoked_at: null });
      const used = await eventually(async () => (await me.get('/v2/api-keys/me')).body.last_used_at, 5_000, 'last_used_at');
      expect(new Date(used).getTime()).toBeGreaterThanOrEqual(new Date(first.body.created_at).getTime());
    } finally {
      await api.stop();
    }
  });
});

describe('POST /v2/api-keys/rotate', () => {
  it('returns a new key once; the old key works for the configured grace period, then not', async () => {
    const { me, keyId, accountId } = await signUp();
    const before = Date.now();
    const res = await me.post('/v2/api-keys/rotate');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['api_key', 'key', 'previous']);
    expect(res.body.previous).toMatchObject({ id: keyId, replaced_by: res.body.key.id, revoked_at: null });
    const graceEnd = new Date(res.body.previous.expires_at).getTime();
    expect(graceEnd).toBeGreaterThanOrEqual(before + 3600_000 - 2_000);
    expect(graceEnd).toBeLessThanOrEqual(Date.now() + 3600_000 + 2_000);
    expect(res.body.key).toMatchObject({ account_id: accountId, expires_at: null, replaced_by: null });

    const successor = anon.withKey(res.body.api_key);
    expect((await successor.get('/v2/api-keys/me')).body.id).toBe(res.body.key.id);
    // Within the grace period the old key still works...
    expect((await me.get('/v2/api-keys/me')).body).toMatchObject({ id: keyId, replaced_by: res.body.key.id });
    // ...and once it has passed (moved here instead of waiting an hour), it does not.
    await stack.ctx.catalog.pool.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [keyId]);
    expectError(await me.get('/v2/api-keys/me'), 401, 'unauthorized');
    expect((await successor.get('/v2/tenants')).status).toBe(200);
  });

  it('takes a shorter grace period, 0 stopping the old key at once, and refuses a longer one', async () => {
    const { me } = await signUp();
    expect(fieldProblems(await me.post('/v2/api-keys/rotate', { grace_seconds: 3601 }))).toEqual({ grace_seconds: 'must be <= 3600' });
    const res = await me.post('/v2/api-keys/rotate', { grace_seconds: 0 });
    expect(res.status).toBe(201);
    expectError(await me.get('/v2/api-keys/me'), 401, 'unauthorized');
    expect((await anon.withKey(res.body.api_key).get('/v2/api-keys/me')).status).toBe(200);
  });

  it('follows PGWAKE_API_KEY_ROTATION_GRACE_SECONDS', async () => {
    const api = await startControlApi({ ...stack.ctx, config: { ...stack.ctx.config, apiKeyRotationGraceSeconds: 1 } });
    try {
      const client = new ApiClient(api.url);
      const me = await client.signUp('short grace');
      const res = await me.post('/v2/api-keys/rotate');
      expect(res.status).toBe(201);
      expect((await me.get('/v2/api-keys/me')).status).toBe(200);
      await eventually(async () => (await me.get('/v2/api-keys/me')).status === 401, 5_000, 'the old key to stop after 1 s');
      expect((await client.withKey(res.body.api_key).get('/v2/api-keys/me')).status).toBe(200);
    } finally {
      await api.stop();
    }
  });

  it('rotates a key once: a second rotation, even a concurrent one, is 409 naming the successor', async () => {
    const { me, keyId } = await signUp();
    const results = await Promise.all(Array.from({ length: 5 }, () => me.post('/v2/api-keys/rotate')));
    const made = results.filter((r) => r.status === 201);
    expect(made).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) expect(expectError(r, 409, 'already_rotated').details.replaced_by).toBe(made[0]!.body.key.id);
    const { rows } = await stack.ctx.catalog.pool.query('SELECT count(*)::int AS n FROM api_keys k JOIN api_keys o ON o.account_id = k.account_id WHERE o.id = $1', [keyId]);
    expect(rows[0].n).toBe(2);
    // The successor can be rotated in its turn.
    expect((await anon.withKey(made[0]!.body.api_key).post('/v2/api-keys/rotate')).status).toBe(201);
  });
});

describe('POST /v2/api-keys/revoke', () => {
  it('revokes the calling key at once when another key remains', async () => {
    const { me, accountId, keyId } = await signUp();
    const spare = await me.post(`/v2/accounts/${accountId}/api-keys`, { name: 'spare' });
    const res = await me.post('/v2/api-keys/revoke');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: keyId });
    expect(res.body.revoked_at).not.toBeNull();
    expectError(await me.get('/v2/api-keys/me'), 401, 'unauthorized');
    expect((await anon.withKey(spare.body.api_key).get('/v2/api-keys/me')).status).toBe(200);
  });

  it('revokes another key of the account by id, and again is harmless', async () => {
    const { me, accountId } = await signUp();
    const other = await me.post(`/v2/accounts/${accountId}/api-keys`, { name: 'leaked' });
    const res = await me.post('/v2/api-keys/revoke', { key_id: other.body.key.id });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: other.body.key.id, name: 'leaked' });
    expectError(await anon.withKey(other.body.api_key).get('/v2/tenants'), 401, 'unauthorized');
    const again = await me.post('/v2/api-keys/revoke', { key_id: other.body.key.id });
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(res.body.revoked_at);
    expect((await me.get('/v2/account/profile')).body.api_keys.map((k: { id: string }) => k.id)).not.toContain(other.body.key.id);
  });

  it("refuses to revoke the account's last lasting key (409), but a rotated key in its grace period can go", async () => {
    const { me, keyId } = await signUp();
    expectError(await me.post('/v2/api-keys/revoke'), 409, 'last_api_key');
    expect((await me.get('/v2/api-keys/me')).status).toBe(200);
    const rotated = await me.post('/v2/api-keys/rotate');
    const successor = anon.withKey(rotated.body.api_key);
    expectError(await successor.post('/v2/api-keys/revoke'), 409, 'last_api_key');
    // Ending the grace period early: the old key goes, the successor stays.
    expect((await successor.post('/v2/api-keys/revoke', { key_id: keyId })).status).toBe(200);
    expectError(await me.get('/v2/api-keys/me'), 401, 'unauthorized');
    expect((await successor.get('/v2/api-keys/me')).status).toBe(200);
  });

  it('never revokes both of two keys revoked at the same time', async () => {
    const { me, accountId } = await signUp();
    const other = anon.withKey((await me.post(`/v2/accounts/${accountId}/api-keys`)).body.api_key);
    const [a, b] = await Promise.all([me.post('/v2/api-keys/revoke'), other.post('/v2/api-keys/revoke')]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
  });

  it('is 404 for an unknown key id', async () => {
    const { me } = await signUp();
    expectError(await me.post('/v2/api-keys/revoke', { key_id: 'key-doesnotexist' }), 404, 'not_found');
  });
});

describe('checking a key', () => {
  it('finds the key among others with the same visible prefix by comparing hashes', async () => {
    const { me, keyId } = await signUp();
    const { rows } = await stack.ctx.catalog.pool.query('SELECT account_id, prefix FROM api_keys WHERE id = $1', [keyId]);
    // A key that shares the prefix but not the secret: the lookup must not take it for ours.
    const lookalike = `${rows[0].prefix}${'A'.repeat(24)}`;
    await stack.ctx.catalog.pool.query('INSERT INTO api_keys (id, account_id, prefix, key_hash) VALUES ($1, $2, $3, $4)', ['key-lookalike0', rows[0].account_id, rows[0].prefix, hashApiKey(lookalike)]);
    expect((await me.get('/v2/api-keys/me')).body.id).toBe(keyId);
    expect((await anon.withKey(lookalike).get('/v2/api-keys/me')).body.id).toBe('key-lookalike0');
    expectError(await anon.withKey(`${rows[0].prefix}${'B'.repeat(24)}`).get('/v2/api-keys/me'), 401, 'unauthorized');
  });

  it('keys of a deleted account stop, whatever their state', async () => {
    const { me, accountId } = await signUp();
    const other = anon.withKey((await me.post(`/v2/accounts/${accountId}/api-keys`)).body.api_key);
    expect((await me.post('/v2/account/delete', { confirm: accountId })).status).toBe(202);
    expectError(await me.get('/v2/api-keys/me'), 401, 'unauthorized');
    expectError(await other.get('/v2/api-keys/me'), 401, 'unauthorized');
  });
});
