import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlApi } from '../../control-api/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';
import { processesMentioning } from './processes.js';

// The caller's own account: profile, contact details and deletion, against a real autoscaler.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

async function signUp(name: string, email?: string) {
  const res = await anon.post('/v2/accounts', email ? { name, email } : { name });
  expect(res.status).toBe(201);
  return { me: anon.withKey(res.body.api_key), account: res.body.account, keyId: res.body.api_key_id as string };
}

describe('GET /v2/account/profile', () => {
  it('shows the account, its working keys (never their secrets) and how many tenants it has', async () => {
    const { me, account, keyId } = await signUp('Ada', 'ada@example.com');
    await me.post('/v2/tenants', { name: 'one' });
    await me.post('/v2/tenants', { name: 'two' });
    const extra = await me.post(`/v2/accounts/${account.id}/api-keys`, { name: 'ci' });
    const res = await me.get('/v2/account/profile');
    expect(res.status).toBe(200);
    expect(res.body.account).toEqual(account);
    expect(res.body.tenants).toBe(2);
    expect(res.body.api_keys.map((k: { id: string; name: string | null }) => [k.id, k.name])).toEqual([[keyId, null], [extra.body.key.id, 'ci']]);
    expect(JSON.stringify(res.body)).not.toContain(extra.body.api_key);
    expect(JSON.stringify(res.body)).not.toContain(me.key!);
  });
});

describe('POST /v2/account/contact', () => {
  it('changes name and email, leaves out fields alone, and clears email with null', async () => {
    const { me, account } = await signUp('Old name', 'old@example.com');
    const res = await me.post('/v2/account/contact', { email: 'new@example.com' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ...account, email: 'new@example.com' });
    expect((await me.post('/v2/account/contact', { name: 'New name', email: null })).body).toEqual({ ...account, name: 'New name', email: null });
    expect((await me.get('/v2/account/profile')).body.account).toMatchObject({ name: 'New name', email: null });
  });

  it('refuses an empty change, a bad email and unknown fields', async () => {
    const { me } = await signUp('Strict');
    expect(fieldProblems(await me.post('/v2/account/contact', {}))).toEqual({ '(body)': 'must set at least one field' });
    const problems = fieldProblems(await me.post('/v2/account/contact', { email: 'not-an-email', phone: '123' }));
    expect(Object.keys(problems).sort()).toEqual(['email', 'phone']);
    expect(problems.phone).toBe('is not a known field');
    expect(fieldProblems(await me.post('/v2/account/contact', { name: '' }))).toHaveProperty('name');
  });
});

describe('POST /v2/account/delete', () => {
  it('stops every key at once, then deletes every tenant and db asynchronously, computes included', async () => {
    const { me, account } = await signUp('Leaving');
    const second = anon.withKey((await me.post(`/v2/accounts/${account.id}/api-keys`)).body.api_key);
    await me.post('/v2/tenants', { name: 'shop' });
    await me.post('/v2/tenants', { name: 'empty' });
    const app = await me.post('/v2/tenants/shop/dbs', { name: 'app' });
    const hot = await me.post('/v2/tenants/shop/dbs', { name: 'hot', start_immediately: true });
    expect(hot.body.state).toBe('running');
    expect((await processesMentioning(hot.body.id)).length).toBeGreaterThan(0);
    const tenants = await stack.ctx.catalog.tenants.list(account.id);

    const res = await me.post('/v2/account/delete', { confirm: account.id });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ account: { id: account.id }, state: 'deleting', tenants: ['shop', 'empty'] });
    expect(res.body.dbs.map((d: { name: string; state: string }) => [d.name, d.state])).toEqual([
      ['app', 'deleting'],
      ['hot', 'deleting'],
    ]);
    // At once: no key of the account works, the one that asked included.
    expectError(await me.get('/v2/tenants'), 401, 'unauthorized');
    expectError(await second.get('/v2/tenants'), 401, 'unauthorized');
    expectError(await me.post('/v2/tenants', { name: 'late' }), 401, 'unauthorized');

    // Then, in the background: dbs deleted, computes gone, tenant rows (and their logins) gone.
    for (const id of [app.body.id, hot.body.id]) {
      await eventually(async () => (await stack.ctx.catalog.dbs.byId(id)) === null || (await stack.ctx.catalog.dbs.byId(id))?.state === 'deleted', 30_000, `db ${id} deleted`);
    }
    await eventually(async () => (await stack.ctx.catalog.tenants.list(account.id)).length === 0, 30_000, 'the tenants to be gone');
    for (const t of tenants) expect(await stack.ctx.catalog.tenants.byPgUser(t.pg_user)).toBeNull();
    expect(await processesMentioning(hot.body.id)).toEqual([]);
    expect(await stack.ctx.catalog.accounts.byId(account.id)).toBeNull();
  });

  it('needs the account id in confirm, and changes nothing without it', async () => {
    const { me, account } = await signUp('Careful');
    await me.post('/v2/tenants', { name: 'kept' });
    expect(fieldProblems(await me.post('/v2/account/delete', {}))).toEqual({ confirm: 'is required' });
    expect(fieldProblems(await me.post('/v2/account/delete', { confirm: 'acct-someoneelse' }))).toEqual({ confirm: `must be this account's id (${account.id})` });
    expect((await me.get('/v2/tenants')).body.tenants).toHaveLength(1);
  });

  it('is finished by a control API started later if the one that began it stopped', async () => {
    const { me, account } = await signUp('Interrupted');
    await me.post('/v2/tenants', { name: 'left-over' });
    // As if a process marked the account deleted and stopped before deleting its contents.
    expect(await stack.ctx.catalog.accounts.markDeleted(account.id)).toBe(true);
    expectError(await me.get('/v2/tenants'), 401, 'unauthorized');
    expect(await stack.ctx.catalog.tenants.list(account.id)).toHaveLength(1);
    const api = await startControlApi(stack.ctx);
    try {
      await eventually(async () => (await stack.ctx.catalog.tenants.list(account.id)).length === 0, 10_000, 'the left-over tenant to be deleted');
    } finally {
      await api.stop();
    }
  });
});
