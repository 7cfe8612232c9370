import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveScramKeys, parseScramVerifier } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';

let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

describe('POST /v2/tenants', () => {
  it('creates the tenant with a deployment-unique login, a random password and the dsn template', async () => {
    const me = await anon.signUp();
    const res = await me.post('/v2/tenants', { name: 'acme' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['dsn_template', 'pg_password', 'pg_user', 'tenant']);
    const { tenant, pg_user, pg_password, dsn_template } = res.body;
    expect(tenant).toMatchObject({ name: 'acme', pg_user });
    expect(Object.keys(tenant).sort()).toEqual(['created_at', 'id', 'name', 'pg_user', 'updated_at']);
    expect(pg_user).toMatch(/^acme_[a-z0-9]{6}$/);
    expect(pg_password.length).toBeGreaterThanOrEqual(24);
    expect(dsn_template).toBe(`postgres://${pg_user}:${pg_password}@${stack.config.gatewayHost}:${stack.config.gatewayPort}/<db-name>?sslmode=require`);

    // Stored sealed (not in clear) and as a SCRAM verifier of that very password.
    const row = (await stack.ctx.catalog.tenants.byPgUser(pg_user))!;
    expect(row.password_sealed).not.toContain(pg_password);
    expect(stack.ctx.secrets.open(row.password_sealed)).toBe(pg_password);
    const verifier = parseScramVerifier(row.scram_verifier);
    expect(deriveScramKeys(pg_password, verifier.salt, verifier.iterations).storedKey.equals(verifier.storedKey)).toBe(true);
    expect(deriveScramKeys('wrong', verifier.salt, verifier.iterations).storedKey.equals(verifier.storedKey)).toBe(false);
  });

  it('gives two accounts the same tenant name but never the same pg_user or password', async () => {
    const a = await anon.signUp();
    const b = await anon.signUp();
    const ra = await a.post('/v2/tenants', { name: 'shop' });
    const rb = await b.post('/v2/tenants', { name: 'shop' });
    expect([ra.status, rb.status]).toEqual([201, 201]);
    expect(ra.body.pg_user).not.toBe(rb.body.pg_user);
    expect(ra.body.pg_password).not.toBe(rb.body.pg_password);
  });

  it('makes a plain, unreserved Postgres identifier of any valid name', async () => {
    const me = await anon.signUp();
    const cases: [string, RegExp][] = [
      ['1st', /^t_1st_[a-z0-9]{6}$/],
      ['pg-data', /^t_pg_data_[a-z0-9]{6}$/],
      ['pg', /^t_pg_[a-z0-9]{6}$/],
      ['my-shop-2', /^my_shop_2_[a-z0-9]{6}$/],
    ];
    for (const [name, pattern] of cases) {
      const res = await me.post('/v2/tenants', { name });
      expect(res.status).toBe(201);
      expect(res.body.pg_user).toMatch(pattern);
    }
    const long = await me.post('/v2/tenants', { name: 'a'.repeat(63) });
    expect(long.status).toBe(201);
    expect(long.body.pg_user.length).toBeLessThanOrEqual(63);
    expect(long.body.pg_user).toMatch(/^a+_[a-z0-9]{6}$/);
  });

  it('says which field is wrong and why', async () => {
    const me = await anon.signUp();
    const why = async (body: unknown) => fieldProblems(await me.post('/v2/tenants', body));
    expect(await why({ name: 'Acme' })).toEqual({ name: 'may contain only lowercase letters, digits and hyphens' });
    expect(await why({ name: 'a_b' })).toEqual({ name: 'may contain only lowercase letters, digits and hyphens' });
    expect(await why({ name: '-acme' })).toEqual({ name: 'must not start or end with a hyphen' });
    expect(await why({ name: 'acme-' })).toEqual({ name: 'must not start or end with a hyphen' });
    expect(await why({ name: '' })).toEqual({ name: 'must be 1 to 63 characters long' });
    expect(await why({ name: 'a'.repeat(64) })).toEqual({ name: 'must be 1 to 63 characters long' });
    expect(await why({ name: 42 })).toEqual({ name: 'must be string' });
    expect(await why({})).toEqual({ name: 'is required' });
    expect(await why({ name: 'ok', region: 'eu' })).toEqual({ region: 'is not a known field' });
    const err = expectError(await me.post('/v2/tenants', { name: 'Acme' }), 400, 'invalid_request');
    expect(err.message).toBe('name: may contain only lowercase letters, digits and hyphens');
    expect(err.details.fields).toEqual([{ in: 'body', field: 'name', problem: 'may contain only lowercase letters, digits and hyphens' }]);
    expect((await me.get('/v2/tenants')).body.tenants).toEqual([]);
  });

  it('answers 409 for a name the account has already', async () => {
    const me = await anon.signUp();
    expect((await me.post('/v2/tenants', { name: 'twice' })).status).toBe(201);
    expect(expectError(await me.post('/v2/tenants', { name: 'twice' }), 409, 'conflict').message).toContain('twice');
  });
});

describe('reading tenants', () => {
  it('lists, describes and gives the credentials again', async () => {
    const me = await anon.signUp();
    const one = await me.post('/v2/tenants', { name: 'one' });
    const two = await me.post('/v2/tenants', { name: 'two' });
    const list = await me.get('/v2/tenants');
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ tenants: [one.body.tenant, two.body.tenant] });
    expect((await me.get('/v2/tenants/two')).body).toEqual(two.body.tenant);
    const creds = await me.get('/v2/tenants/one/credentials');
    expect(creds.status).toBe(200);
    expect(creds.body).toEqual({ pg_user: one.body.pg_user, pg_password: one.body.pg_password, dsn_template: one.body.dsn_template });
  });

  it('answers 404 for unknown tenants and 400 for names that cannot be one', async () => {
    const me = await anon.signUp();
    expectError(await me.get('/v2/tenants/nobody'), 404, 'not_found');
    expectError(await me.get('/v2/tenants/nobody/credentials'), 404, 'not_found');
    expectError(await me.get('/v2/tenants/nobody/dbs'), 404, 'not_found');
    expectError(await me.delete('/v2/tenants/nobody'), 404, 'not_found');
    const err = expectError(await me.get('/v2/tenants/No_Such'), 400, 'invalid_request');
    expect(err.details.fields).toEqual([{ in: 'params', field: 'tenant', problem: 'may contain only lowercase letters, digits and hyphens' }]);
  });
});

describe('DELETE /v2/tenants/:tenant', () => {
  it('deletes a tenant without dbs at once', async () => {
    const me = await anon.signUp();
    const created = await me.post('/v2/tenants', { name: 'gone' });
    const res = await me.delete('/v2/tenants/gone');
    expect(res.status).toBe(204);
    expectError(await me.get('/v2/tenants/gone'), 404);
    expect(await stack.ctx.catalog.tenants.byPgUser(created.body.pg_user)).toBeNull();
    // The name is free again, with a new login.
    const again = await me.post('/v2/tenants', { name: 'gone' });
    expect(again.status).toBe(201);
    expect(again.body.pg_user).not.toBe(created.body.pg_user);
  });

  it('refuses a tenant with dbs (409) unless cascade=true, which deletes its dbs and then the tenant', async () => {
    const me = await anon.signUp();
    await me.post('/v2/tenants', { name: 'busy' });
    const a = await me.post('/v2/tenants/busy/dbs', { name: 'a' });
    const b = await me.post('/v2/tenants/busy/dbs', { name: 'b', start_immediately: true });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.state).toBe('running');

    const refused = expectError(await me.delete('/v2/tenants/busy'), 409, 'conflict');
    expect(refused.details.dbs.sort()).toEqual(['a', 'b']);
    expect(fieldProblems(await me.delete('/v2/tenants/busy?cascade=yes'))).toEqual({ cascade: 'must be one of true, false' });
    expectError(await me.delete('/v2/tenants/busy?cascade=false'), 409, 'conflict');
    expect((await me.get('/v2/tenants/busy/dbs')).body.dbs.map((d: { state: string }) => d.state).sort()).toEqual(['running', 'suspended']);

    const res = await me.delete('/v2/tenants/busy?cascade=true');
    expect(res.status).toBe(202);
    expect(res.body.tenant.name).toBe('busy');
    expect(res.body.dbs.map((d: { name: string; state: string }) => [d.name, d.state]).sort()).toEqual([
      ['a', 'deleting'],
      ['b', 'deleting'],
    ]);
    expect(expectError(await me.post('/v2/tenants/busy/dbs', { name: 'late' }), 409, 'conflict').message).toContain('being deleted');
    await eventually(async () => (await me.get('/v2/tenants/busy')).status === 404, 30_000, 'the tenant to be gone');
    expectError(await me.get(`/v2/dbs/${a.body.id}`), 404);
    expectError(await me.get(`/v2/dbs/${b.body.id}`), 404);
    expect((await me.get('/v2/tenants')).body.tenants).toEqual([]);
  });
});

describe('isolation between accounts', () => {
  it("shows another account's tenants and dbs as 404, never 403 or 200, and changes nothing", async () => {
    const owner = await anon.signUp('owner');
    const other = await anon.signUp('other');
    await owner.post('/v2/tenants', { name: 'private' });
    const db = await owner.post('/v2/tenants/private/dbs', { name: 'secret' });
    expect(db.status).toBe(201);
    const id = db.body.id;

    const attempts = [
      other.get('/v2/tenants/private'),
      other.get('/v2/tenants/private/credentials'),
      other.get('/v2/tenants/private/dbs'),
      other.get('/v2/tenants/private/dbs/secret'),
      other.get(`/v2/dbs/${id}`),
      other.patch('/v2/tenants/private/dbs/secret', { pool_mode: 'transaction' }),
      other.post(`/v2/dbs/${id}/resume`),
      other.post(`/v2/dbs/${id}/suspend`),
      other.delete('/v2/tenants/private/dbs/secret'),
      other.post('/v2/tenants/private/dbs', { name: 'intruder' }),
      other.delete('/v2/tenants/private?cascade=true'),
    ];
    for (const res of await Promise.all(attempts)) {
      const err = expectError(res, 404, 'not_found');
      expect(JSON.stringify(err)).not.toContain(owner.key!);
    }
    expect((await other.get('/v2/tenants')).body).toEqual({ tenants: [] });

    // The owner's things are as they were.
    const after = await owner.get(`/v2/dbs/${id}`);
    expect(after.body).toMatchObject({ state: 'suspended', pool_mode: 'session' });
    expect((await owner.get('/v2/tenants/private/dbs')).body.dbs.map((d: { name: string }) => d.name)).toEqual(['secret']);
  });
});
