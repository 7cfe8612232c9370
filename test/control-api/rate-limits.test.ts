import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlApi, type ControlApiRole } from '../../control-api/index.js';
import type { Config } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, expectError } from './client.js';

// Limits per API key, per client address and on sign-ups: 429 with Retry-After in the one error shape.
let stack: TestStack;
const started: ControlApiRole[] = [];

beforeAll(async () => {
  stack = await startTestStack({}, ['control-api']);
});
afterAll(async () => {
  for (const api of started) await api.stop();
  await stack?.destroy();
});

async function apiWith(settings: Partial<Config>): Promise<ApiClient> {
  const api = await startControlApi({ ...stack.ctx, config: { ...stack.ctx.config, ...settings } });
  started.push(api);
  return new ApiClient(api.url);
}

describe('per API key', () => {
  it('answers 429 with Retry-After over the limit, in the error shape, and other keys go on', async () => {
    const client = await apiWith({ rateLimitPerKey: 5, rateLimitPerAddress: 1000, rateLimitWindowSeconds: 60 });
    const me = await client.signUp('limited');
    const other = await client.signUp('unlimited');
    for (let i = 0; i < 5; i++) {
      const ok = await me.get('/v2/tenants');
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit')).toBe('5');
      expect(ok.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
    }
    const refused = await me.get('/v2/tenants');
    const err = expectError(refused, 429, 'rate_limited');
    expect(err.message).toContain('API key');
    expect(err.details).toMatchObject({ scope: 'api_key', limit: 5, window_seconds: 60 });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(err.details.retry_after_seconds).toBe(retryAfter);
    // Every route under the key counts, writes too, and is refused before anything happens.
    expectError(await me.post('/v2/tenants', { name: 'nope' }), 429, 'rate_limited');
    expect((await other.get('/v2/tenants')).status).toBe(200);
    expect((await other.get('/v2/tenants')).body.tenants).toEqual([]);
  });

  it('counts before the key is checked: a wrong key flooding is refused without catalog lookups', async () => {
    const client = await apiWith({ rateLimitPerKey: 3, rateLimitPerAddress: 1000 });
    const wrong = client.withKey(`pgw_${'x'.repeat(32)}`);
    for (let i = 0; i < 3; i++) expectError(await wrong.get('/v2/tenants'), 401, 'unauthorized');
    expectError(await wrong.get('/v2/tenants'), 429, 'rate_limited');
  });

  it('lets requests through again once the window has passed', async () => {
    const client = await apiWith({ rateLimitPerKey: 2, rateLimitPerAddress: 1000, rateLimitWindowSeconds: 1 });
    const me = await client.signUp('window');
    await me.get('/v2/tenants');
    await me.get('/v2/tenants');
    const refused = await me.get('/v2/tenants');
    expectError(refused, 429);
    expect(refused.headers.get('retry-after')).toBe('1');
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await me.get('/v2/tenants')).status).toBe(200);
  });
});

describe('per address', () => {
  it('limits an address across keys and without one, but never /healthz or /metrics', async () => {
    const client = await apiWith({ rateLimitPerKey: 1000, rateLimitPerAddress: 6, signupRateLimitPerAddress: 1000 });
    const a = await client.signUp('a'); // 1
    const b = await client.signUp('b'); // 2
    await a.get('/v2/tenants'); // 3
    await b.get('/v2/tenants'); // 4
    await client.get('/openapi.json'); // 5
    await client.get('/v2/no-such-route'); // 6
    const err = expectError(await b.get('/v2/tenants'), 429, 'rate_limited');
    expect(err.details.scope).toBe('address');
    expectError(await client.get('/openapi.json'), 429, 'rate_limited');
    expectError(await client.post('/v2/accounts', { name: 'c' }), 429, 'rate_limited');
    for (let i = 0; i < 5; i++) {
      expect((await client.get('/healthz')).status).toBe(200);
      expect((await client.get('/metrics')).status).toBe(200);
    }
  });

  it('with PGWAKE_TRUST_PROXY counts the forwarded client address, not the proxy', async () => {
    const client = await apiWith({ rateLimitPerKey: 1000, rateLimitPerAddress: 2, signupRateLimitPerAddress: 1000, trustProxy: true });
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    await client.get('/openapi.json', from('203.0.113.1'));
    await client.get('/openapi.json', from('203.0.113.1'));
    expectError(await client.get('/openapi.json', from('203.0.113.1')), 429, 'rate_limited');
    expect((await client.get('/openapi.json', from('203.0.113.2'))).status).toBe(200);
  });

  it('without it, a forwarded address is not believed', async () => {
    const client = await apiWith({ rateLimitPerKey: 1000, rateLimitPerAddress: 2, signupRateLimitPerAddress: 1000 });
    await client.get('/openapi.json', { 'x-forwarded-for': '203.0.113.1' });
    await client.get('/openapi.json', { 'x-forwarded-for': '203.0.113.2' });
    expectError(await client.get('/openapi.json', { 'x-forwarded-for': '203.0.113.3' }), 429, 'rate_limited');
  });
});

describe('sign-ups', () => {
  it('are limited per address per hour on their own', async () => {
    const client = await apiWith({ signupRateLimitPerAddress: 2 });
    await client.signUp('one');
    await client.signUp('two');
    const refused = await client.post('/v2/accounts', { name: 'three' });
    const err = expectError(refused, 429, 'rate_limited');
    expect(err.details).toMatchObject({ scope: 'signup_address', window_seconds: 3600 });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(3500);
    expect((await client.get('/openapi.json')).status).toBe(200);
  });
});

describe('settings', () => {
  it('0 turns a limit off', async () => {
    const client = await apiWith({ rateLimitPerKey: 0, rateLimitPerAddress: 0 });
    const me = await client.signUp('free');
    const results = await Promise.all(Array.from({ length: 50 }, () => me.get('/v2/tenants')));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results[0]!.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('refusals are counted in pgwake_http_rate_limited_total by scope', async () => {
    const client = await apiWith({ rateLimitPerKey: 1, rateLimitPerAddress: 1000 });
    const me = await client.signUp('metrics');
    await me.get('/v2/tenants');
    expectError(await me.get('/v2/tenants'), 429);
    const text = (await client.get('/metrics')).body as string;
    expect(text).toMatch(/pgwake_http_rate_limited_total\{scope="api_key"\} [1-9]/);
  });
});
