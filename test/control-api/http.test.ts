import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlApi } from '../../control-api/index.js';
import type { Logger } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';

// The HTTP surface that needs no compute: errors, auth, sign-up, OpenAPI, health, metrics.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

describe('listening', () => {
  it('reports the port the OS chose for port 0', async () => {
    expect(stack.config.httpPort).toBe(0);
    expect(stack.controlApi!.port).toBeGreaterThan(0);
    expect(stack.controlApi!.url).toBe(`http://${stack.config.listenHost}:${stack.controlApi!.port}`);
    const res = await anon.get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });
});

describe('sign-up', () => {
  it('returns the account and an API key that works, shown once and stored only as a hash', async () => {
    const res = await anon.post('/v2/accounts', { name: 'Ada', email: 'ada@example.com' });
    expect(res.status).toBe(201);
    expect(res.body.account).toMatchObject({ name: 'Ada', email: 'ada@example.com' });
    expect(res.body.account.id).toMatch(/^acct-/);
    expect(res.body.api_key).toMatch(/^pgw_/);
    expect(res.body.api_key.startsWith(res.body.api_key_prefix)).toBe(true);
    const { rows } = await stack.ctx.catalog.pool.query('SELECT prefix, key_hash FROM api_keys WHERE id = $1', [res.body.api_key_id]);
    expect(rows[0].prefix).toBe(res.body.api_key_prefix);
    expect(Buffer.from(rows[0].key_hash).toString()).not.toContain(res.body.api_key);
    const me = anon.withKey(res.body.api_key);
    expect((await me.get('/v2/tenants')).body).toEqual({ tenants: [] });
  });

  it('validates the body', async () => {
    expect(fieldProblems(await anon.post('/v2/accounts', {}))).toEqual({ name: 'is required' });
    expect(fieldProblems(await anon.post('/v2/accounts', { name: 'x', email: 'not-an-email', plan: 'gold' }))).toEqual({
      email: expect.stringContaining('email'),
      plan: 'is not a known field',
    });
  });

  it('is refused with 403 when sign-up is closed', async () => {
    const closed = await startControlApi({ ...stack.ctx, config: { ...stack.ctx.config, signup: 'closed' } });
    try {
      const res = await new ApiClient(closed.url).post('/v2/accounts', { name: 'Eve' });
      expectError(res, 403, 'signup_closed');
    } finally {
      await closed.stop();
    }
  });
});

describe('authentication', () => {
  it('refuses a missing, malformed, unknown or revoked key with 401 in the error shape', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Basic abc' }, { authorization: 'Bearer' }, { authorization: 'Bearer pgw_notarealkey' }, { authorization: 'Bearer nope' }]) {
      const res = await anon.get('/v2/tenants', headers);
      expectError(res, 401, 'unauthorized');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const me = await anon.signUp();
    await stack.ctx.catalog.pool.query('UPDATE api_keys SET revoked_at = now() WHERE key_hash = sha256($1::bytea)', [Buffer.from(me.key!)]);
    expectError(await me.get('/v2/tenants'), 401, 'unauthorized');
  });

  it('checks the key before the body: an anonymous caller learns nothing from validation', async () => {
    expectError(await anon.post('/v2/tenants', { name: 'BAD NAME', junk: 1 }), 401, 'unauthorized');
    expectError(await anon.post('/v2/tenants', '{not json'), 401, 'unauthorized');
  });

  it('records key use in batches, not one catalog write per request', async () => {
    const api = await startControlApi(stack.ctx, { keyUseFlushMs: 60_000 });
    try {
      const me = await new ApiClient(api.url).signUp();
      for (let i = 0; i < 5; i++) expect((await me.get('/v2/tenants')).status).toBe(200);
      const lastUsed = async () => (await stack.ctx.catalog.pool.query('SELECT last_used_at FROM api_keys WHERE key_hash = sha256($1::bytea)', [Buffer.from(me.key!)])).rows[0].last_used_at;
      expect(await lastUsed()).toBeNull();
      await api.stop(); // flushes what it has recorded
      expect(await lastUsed()).not.toBeNull();
    } finally {
      await api.stop();
    }
  });

  it('writes last_used_at on its interval', async () => {
    const api = await startControlApi(stack.ctx, { keyUseFlushMs: 100 });
    try {
      const me = await new ApiClient(api.url).signUp();
      expect((await me.get('/v2/tenants')).status).toBe(200);
      await eventually(async () => (await stack.ctx.catalog.pool.query('SELECT last_used_at FROM api_keys WHERE key_hash = sha256($1::bytea)', [Buffer.from(me.key!)])).rows[0].last_used_at, 5_000, 'last_used_at');
    } finally {
      await api.stop();
    }
  });
});

describe('errors are one JSON shape', () => {
  let me: ApiClient;
  beforeAll(async () => {
    me = await anon.signUp();
  });

  it('for unknown routes and methods', async () => {
    expect(expectError(await anon.get('/nope'), 404, 'not_found').message).toContain('/nope');
    expectError(await me.get('/v2/nothing/here'), 404, 'not_found');
    expectError(await me.request('PUT', '/v2/tenants'), 404, 'not_found');
  });

  it('for malformed JSON, an empty JSON body, a wrong content type and a body too large', async () => {
    expectError(await me.post('/v2/tenants', '{"name": "x"'), 400, 'malformed_json');
    expectError(await me.post('/v2/tenants', '', { 'content-type': 'application/json' }), 400, 'malformed_json');
    expectError(await me.post('/v2/tenants', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    expectError(await me.post('/v2/tenants', { name: 'x'.repeat(200_000) }), 413, 'body_too_large');
  });

  it('for a body that is not an object', async () => {
    expect(fieldProblems(await me.post('/v2/tenants', [1, 2]))).toEqual({ '(body)': 'must be a JSON object' });
    expect(fieldProblems(await me.post('/v2/tenants', 'null'))).toEqual({ '(body)': 'must be a JSON object' });
  });
});

describe('OpenAPI', () => {
  it('serves a document that lists every route with its schemas', async () => {
    const res = await anon.get('/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
        'GET /healthz',
        'GET /metrics',
        'POST /v2/accounts',
        'POST /v2/tenants',
        'GET /v2/tenants',
        'GET /v2/tenants/{tenant}',
        'DELETE /v2/tenants/{tenant}',
        'GET /v2/tenants/{tenant}/credentials',
        'POST /v2/tenants/{tenant}/dbs',
        'GET /v2/tenants/{tenant}/dbs',
        'GET /v2/tenants/{tenant}/dbs/{db}',
        'PATCH /v2/tenants/{tenant}/dbs/{db}',
        'DELETE /v2/tenants/{tenant}/dbs/{db}',
        'GET /v2/dbs/{id}',
        'POST /v2/dbs/{id}/suspend',
        'POST /v2/dbs/{id}/resume',
        'GET /v2/events',
        'POST /v2/accounts/{account}/api-keys',
        'GET /v2/account/profile',
        'POST /v2/account/contact',
        'POST /v2/account/delete',
        'GET /v2/api-keys/me',
        'POST /v2/api-keys/rotate',
        'POST /v2/api-keys/revoke',
        'GET /v2/billing/summary',
        'POST /v2/dbs/{id}/scale/cancel',
        'GET /.well-known/jwks.json',
        'POST /v2/credentials',
        'GET /v2/tenants/{tenant}/dbs/{db}/roles',
        'POST /v2/tenants/{tenant}/dbs/{db}/roles',
        'GET /v2/tenants/{tenant}/dbs/{db}/roles/{role}',
        'PATCH /v2/tenants/{tenant}/dbs/{db}/roles/{role}',
        'DELETE /v2/tenants/{tenant}/dbs/{db}/roles/{role}',
        'GET /v2/tenants/{tenant}/dbs/{db}/network-restrictions',
        'PUT /v2/tenants/{tenant}/dbs/{db}/network-restrictions',
        'GET /v2/tenants/{tenant}/network-restrictions',
        'PUT /v2/tenants/{tenant}/network-restrictions',
        'GET /v2/tenants/{tenant}/dbs/{db}/network-bans',
        'DELETE /v2/tenants/{tenant}/dbs/{db}/network-bans/{address}',
        'GET /v2/tenants/{tenant}/dbs/{db}/ssl-enforcement',
        'PUT /v2/tenants/{tenant}/dbs/{db}/ssl-enforcement',
        'GET /v2/tenants/{tenant}/dbs/{db}/connection-limits',
        'PUT /v2/tenants/{tenant}/dbs/{db}/connection-limits',
        'GET /v2/tenants/{tenant}/connection-limits',
        'PUT /v2/tenants/{tenant}/connection-limits',
      ].sort(),
    );
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Db', 'Tenant', 'Error', 'TenantCredentials', 'Account', 'ApiKey', 'Role']));
    expect(doc.paths['/.well-known/jwks.json'].get.security).toBeUndefined();
    expect(doc.components.schemas.Db.required).toEqual(expect.arrayContaining(['id', 'state', 'scale_state', 'candidate_profile', 'scale_failure_reason', 'suspend_timeout_seconds']));
    const createDb = doc.paths['/v2/tenants/{tenant}/dbs'].post;
    expect(createDb.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    expect(createDb.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths['/v2/accounts'].post.security).toBeUndefined();
  });

  it('/docs leads to the document', async () => {
    const res = await fetch(`${stack.controlApi!.url}/docs`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/openapi.json');
  });
});

describe('metrics', () => {
  it('serves the registry with request durations labelled by route pattern', async () => {
    const me = await anon.signUp();
    await me.get('/v2/tenants/some-tenant');
    await me.get('/v2/dbs/db-doesnotexist1');
    await anon.get('/no/such/route/12345');
    const res = await anon.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = res.body as string;
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toMatch(/pgwake_http_request_duration_seconds_count\{[^}]*route="\/v2\/tenants\/:tenant"[^}]*status_code="404"[^}]*\} [1-9]/);
    expect(text).toMatch(/pgwake_http_request_duration_seconds_count\{[^}]*route="\/v2\/dbs\/:id"[^}]*\}/);
    expect(text).toMatch(/pgwake_http_request_duration_seconds_count\{[^}]*route="unmatched"[^}]*\}/);
    // Raw URLs never become label values: the label set stays bounded.
    expect(text).not.toContain('some-tenant');
    expect(text).not.toContain('db-doesnotexist1');
    expect(text).not.toContain('12345');
  });
});

describe('logs', () => {
  it('never contain API keys, tenant passwords or Authorization headers, even at trace level', async () => {
    let logged = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged += String(chunk);
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink) as unknown as Logger;
    const api = await startControlApi({ ...stack.ctx, logger });
    const secrets: string[] = [];
    try {
      const client = new ApiClient(api.url);
      const me = await client.signUp();
      secrets.push(me.key!);
      const created = await me.post('/v2/tenants', { name: 'loggy' });
      expect(created.status).toBe(201);
      secrets.push(created.body.pg_password);
      const creds = await me.get('/v2/tenants/loggy/credentials');
      expect(creds.body.pg_password).toBe(created.body.pg_password);
      await me.post('/v2/tenants', { name: 'BAD' });
      await client.withKey('pgw_wrong-key-that-is-secret').get('/v2/tenants');
      secrets.push('pgw_wrong-key-that-is-secret');
    } finally {
      await api.stop();
    }
    expect(logged).toContain('tenant created'); // the sink does see the API's logs
    for (const secret of secrets) expect(logged).not.toContain(secret);
    expect(logged.toLowerCase()).not.toContain('bearer');
  });
});
