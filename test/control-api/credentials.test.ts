import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';
import { MANY_SIGNUPS } from './settings.js';

let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack({ ...MANY_SIGNUPS, PGWAKE_CREDENTIAL_TTL_SECONDS: '600' }, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

async function tenantWithRoles(api: ApiClient) {
  const me = await api.signUp();
  expect((await me.post('/v2/tenants', { name: 'acme' })).status).toBe(201);
  const app = await me.post('/v2/tenants/acme/dbs', { name: 'app' });
  const other = await me.post('/v2/tenants/acme/dbs', { name: 'other' });
  expect((await me.post('/v2/tenants/acme/dbs/app/roles', { name: 'ana', kind: 'oauth', identity: { email: 'ana@example.com' } })).status).toBe(201);
  expect((await me.post('/v2/tenants/acme/dbs/other/roles', { name: 'ana', kind: 'oauth' })).status).toBe(201);
  expect((await me.post('/v2/tenants/acme/dbs/app/roles', { name: 'svc', kind: 'oauth', identity: { sub: 'svc-1' } })).status).toBe(201);
  expect((await me.post('/v2/tenants/acme/dbs/app/roles', { name: 'pw', kind: 'password' })).status).toBe(201);
  const tenant = await me.get('/v2/tenants/acme');
  return { me, appId: app.body.id as string, otherId: other.body.id as string, tenantId: tenant.body.id as string };
}

async function verify(token: string, jwks: JSONWebKeySet) {
  return jwtVerify(token, createLocalJWKSet(jwks), { issuer: 'pgwake', audience: 'pgwake', algorithms: ['ES256'] });
}

describe('POST /v2/credentials', () => {
  it('issues a JWT for one oauth role of one db, signed by a key in the JWKS', async () => {
    const { me, appId } = await tenantWithRoles(anon);
    const before = Math.floor(Date.now() / 1000);
    const res = await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ token_type: 'jwt', issuer: 'pgwake', audience: 'pgwake', role: 'ana', tenant: 'acme', db: 'app', db_id: appId });
    expect(res.body.dsn_template).toBe(`postgres://ana@${stack.config.gatewayHost}:${stack.config.gatewayPort}/app?sslmode=require&options=endpoint%3D${appId}`);

    const jwks = await anon.get('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=60');
    expect(jwks.body.keys).toHaveLength(1);
    const [key] = jwks.body.keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: res.body.kid });
    expect(key.d).toBeUndefined(); // never the private half

    const header = decodeProtectedHeader(res.body.token);
    expect(header).toEqual({ alg: 'ES256', kid: res.body.kid, typ: 'JWT' });
    const { payload } = await verify(res.body.token, jwks.body);
    expect(payload).toMatchObject({ iss: 'pgwake', aud: 'pgwake', pgwake_role: 'ana', pgwake_db: appId, email: 'ana@example.com', email_verified: true });
    expect(payload.pgwake_tenant).toBeUndefined();
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload.iat!).toBeGreaterThanOrEqual(before);
    expect(new Date(res.body.expires_at).getTime()).toBe(payload.exp! * 1000);
    expect(typeof payload.jti).toBe('string');

    // The private key is sealed in the catalog.
    const { rows } = await stack.ctx.catalog.pool.query<{ private_jwk: string }>('SELECT private_jwk FROM signing_keys WHERE kid = $1', [res.body.kid]);
    expect(rows[0]!.private_jwk).not.toMatch(/"d"/);
    expect(JSON.parse(stack.ctx.secrets.open(rows[0]!.private_jwk)).d).toEqual(expect.any(String));
  });

  it('puts a sub-bound identity in `sub`, and can be valid for the role in every db of the tenant', async () => {
    const { me, tenantId } = await tenantWithRoles(anon);
    const jwks = (await anon.get('/.well-known/jwks.json')).body;
    const svc = await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'svc', ttl_seconds: 60 });
    const { payload } = await verify(svc.body.token, jwks);
    expect(payload).toMatchObject({ sub: 'svc-1', pgwake_role: 'svc' });
    expect(payload.exp! - payload.iat!).toBe(60);

    const wide = await me.post('/v2/credentials', { tenant: 'acme', role: 'ana' });
    expect(wide.status).toBe(201);
    expect(wide.body).toMatchObject({ db: null, db_id: null, role: 'ana' });
    expect(wide.body.dsn_template).toContain('/<db-name>?sslmode=require&options=endpoint%3D%3Cdb-id%3E');
    const w = (await verify(wide.body.token, jwks)).payload;
    expect(w).toMatchObject({ pgwake_tenant: tenantId, pgwake_role: 'ana' });
    expect(w.pgwake_db).toBeUndefined();
  });

  it('refuses password roles, unknown roles and dbs, and a longer life than the most', async () => {
    const { me } = await tenantWithRoles(anon);
    expectError(await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'pw' }), 409, 'conflict');
    expectError(await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'nobody' }), 404, 'not_found');
    expectError(await me.post('/v2/credentials', { tenant: 'acme', role: 'pw' }), 404, 'not_found');
    expectError(await me.post('/v2/credentials', { tenant: 'acme', db: 'nodb', role: 'ana' }), 404, 'not_found');
    expectError(await me.post('/v2/credentials', { tenant: 'nope', db: 'app', role: 'ana' }), 404, 'not_found');
    expect(fieldProblems(await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana', ttl_seconds: 601 }))).toEqual({ ttl_seconds: 'must be <= 600' });
    expect(fieldProblems(await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana', ttl_seconds: 0 }))).toEqual({ ttl_seconds: 'must be >= 1' });
    expect(fieldProblems(await me.post('/v2/credentials', { tenant: 'acme', db: 'app' }))).toEqual({ role: 'is required' });
    expectError(await anon.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' }), 401, 'unauthorized');
  });
});

describe('signing key rotation', () => {
  it('replaces an old key at the next issue and keeps it published until its last token expired', async () => {
    const rot = await startTestStack({ ...MANY_SIGNUPS, PGWAKE_SIGNING_KEY_ROTATION_SECONDS: '2', PGWAKE_CREDENTIAL_TTL_SECONDS: '4', PGWAKE_TOKEN_CLOCK_SKEW_SECONDS: '0' }, ['autoscaler', 'control-api']);
    try {
      const api = new ApiClient(rot.controlApi!.url);
      const { me } = await tenantWithRoles(api);
      const first = await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' });
      // Within the rotation age the key is kept.
      expect((await me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' })).body.kid).toBe(first.body.kid);
      await new Promise((r) => setTimeout(r, 2_100));
      // Issues at once after the key aged make one new key between them.
      const burst = await Promise.all(Array.from({ length: 5 }, () => me.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' })));
      const second = burst[0]!;
      expect(new Set(burst.map((r) => r.body.kid))).toEqual(new Set([second.body.kid]));
      expect(second.body.kid).not.toBe(first.body.kid);
      expect((await rot.ctx.catalog.pool.query('SELECT kid FROM signing_keys WHERE retired_at IS NULL')).rows).toEqual([{ kid: second.body.kid }]);

      const jwks = (await api.get('/.well-known/jwks.json')).body;
      expect(jwks.keys.map((k: { kid: string }) => k.kid).sort()).toEqual([first.body.kid, second.body.kid].sort());
      // The token of the old key still verifies against the published keys until it expires.
      expect((await jwtVerify(first.body.token, createLocalJWKSet(jwks), { issuer: 'pgwake', audience: 'pgwake' })).protectedHeader.kid).toBe(first.body.kid);

      const { rows } = await rot.ctx.catalog.pool.query<{ retired_at: string; published_until: string }>('SELECT retired_at, published_until FROM signing_keys WHERE kid = $1', [first.body.kid]);
      expect(Date.parse(rows[0]!.published_until) - Date.parse(rows[0]!.retired_at)).toBe(4_000);
      expect(Date.parse(rows[0]!.published_until)).toBeGreaterThanOrEqual(Date.parse(first.body.expires_at));

      // Once its last token expired, the old key leaves the JWKS.
      await eventually(async () => {
        const kids = (await api.get('/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
        return !kids.includes(first.body.kid) && kids.length >= 1;
      }, 10_000, 'the retired key to leave the JWKS');
    } finally {
      await rot.destroy();
    }
  });
});
