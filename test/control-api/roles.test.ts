import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveScramKeys, parseScramVerifier } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, expectError, fieldProblems } from './client.js';
import { MANY_SIGNUPS } from './settings.js';

let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

/** A new account with tenant `acme` and db `app` (provisioned, suspended). */
async function tenantWithDb(): Promise<{ me: ApiClient; pgUser: string; dbId: string; base: string }> {
  const me = await anon.signUp();
  const t = await me.post('/v2/tenants', { name: 'acme' });
  expect(t.status).toBe(201);
  const db = await me.post('/v2/tenants/acme/dbs', { name: 'app' });
  expect(db.status, JSON.stringify(db.body)).toBe(201);
  return { me, pgUser: t.body.pg_user, dbId: db.body.id, base: '/v2/tenants/acme/dbs/app/roles' };
}

function verifierMatches(verifier: string, password: string): boolean {
  const v = parseScramVerifier(verifier);
  return deriveScramKeys(password, v.salt, v.iterations).storedKey.equals(v.storedKey);
}

describe('password roles', () => {
  it('are created with a password shown once and kept only as a SCRAM verifier; reset gives a new one', async () => {
    const { me, dbId, base } = await tenantWithDb();
    const res = await me.post(base, { name: 'reporting', kind: 'password' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['dsn_template', 'password', 'role']);
    expect(res.body.role).toMatchObject({ name: 'reporting', kind: 'password', identity: null, db: 'app', db_id: dbId });
    const password: string = res.body.password;
    expect(password.length).toBeGreaterThanOrEqual(24);
    expect(res.body.dsn_template).toBe(
      `postgres://reporting:${encodeURIComponent(password)}@${stack.config.gatewayHost}:${stack.config.gatewayPort}/app?sslmode=require&options=endpoint%3D${dbId}`,
    );

    const row = (await stack.ctx.catalog.roles.byName(dbId, 'reporting'))!;
    expect(row.scram_verifier).not.toContain(password);
    expect(verifierMatches(row.scram_verifier!, password)).toBe(true);

    // Never again: not in describe, not in the list.
    const got = await me.get(`${base}/reporting`);
    expect(got.body).toEqual(res.body.role);
    expect(JSON.stringify((await me.get(base)).body)).not.toContain(password);

    const reset = await me.patch(`${base}/reporting`, { reset_password: true });
    expect(reset.status).toBe(200);
    expect(reset.body.password).not.toBe(password);
    const after = (await stack.ctx.catalog.roles.byName(dbId, 'reporting'))!;
    expect(verifierMatches(after.scram_verifier!, reset.body.password)).toBe(true);
    expect(verifierMatches(after.scram_verifier!, password)).toBe(false);
  });

  it('answers a retry with the same Idempotency-Key with the first answer, password included, and makes no second role', async () => {
    const { me, dbId, base } = await tenantWithDb();
    const first = await me.post(base, { name: 'retried', kind: 'password' }, { 'idempotency-key': 'make-retried-1' });
    const again = await me.post(base, { name: 'retried', kind: 'password' }, { 'idempotency-key': 'make-retried-1' });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect((await stack.ctx.catalog.roles.list(dbId)).map((r) => r.name)).toEqual(['retried']);
    // Kept sealed, like the password itself.
    const { rows } = await stack.ctx.catalog.pool.query<{ body_sealed: string }>("SELECT body_sealed FROM idempotency_keys WHERE key = 'make-retried-1'");
    expect(rows[0]!.body_sealed).not.toContain(first.body.password);
  });

  it('refuses an identity, and a second role of the same name', async () => {
    const { me, base } = await tenantWithDb();
    expect(fieldProblems(await me.post(base, { name: 'x1', kind: 'password', identity: { sub: 'u1' } }))).toEqual({ identity: 'only oauth roles are bound to an identity' });
    expect((await me.post(base, { name: 'dup', kind: 'password' })).status).toBe(201);
    expectError(await me.post(base, { name: 'dup', kind: 'oauth' }), 409, 'conflict');
    expectError(await me.patch(`${base}/dup`, { identity: { sub: 'u1' } }), 409, 'conflict');
  });
});

describe('oauth roles', () => {
  it('are bound to a subject or an email (optionally of one issuer), and the binding can change', async () => {
    const { me, base } = await tenantWithDb();
    const bySub = await me.post(base, { name: 'svc', kind: 'oauth', identity: { sub: 'user-123', issuer: 'https://idp.example.com' } });
    expect(bySub.status, JSON.stringify(bySub.body)).toBe(201);
    expect(Object.keys(bySub.body)).toEqual(['role']); // no password
    expect(bySub.body.role.identity).toEqual({ claim: 'sub', value: 'user-123', issuer: 'https://idp.example.com' });

    const byMail = await me.post(base, { name: 'ana', kind: 'oauth', identity: { email: 'Ana@Example.com' } });
    expect(byMail.body.role.identity).toEqual({ claim: 'email', value: 'ana@example.com', issuer: null });

    const unbound = await me.post(base, { name: 'ci', kind: 'oauth' });
    expect(unbound.body.role.identity).toBeNull();

    const changed = await me.patch(`${base}/ci`, { identity: { email: 'ci@example.com' } });
    expect(changed.status).toBe(200);
    expect(changed.body).toEqual({ role: expect.objectContaining({ identity: { claim: 'email', value: 'ci@example.com', issuer: null } }) });
    expect((await me.patch(`${base}/ci`, { identity: null })).body.role.identity).toBeNull();

    expect(fieldProblems(await me.post(base, { name: 'both', kind: 'oauth', identity: { sub: 'a', email: 'a@b.c' } }))).toEqual({ identity: 'set exactly one of sub and email' });
    expect(fieldProblems(await me.post(base, { name: 'neither', kind: 'oauth', identity: { issuer: 'x' } }))).toEqual({ identity: 'set exactly one of sub and email' });
    expect(fieldProblems(await me.post(base, { name: 'bad', kind: 'oauth', identity: { email: 'not-an-email' } }))).toEqual({ 'identity.email': 'is not an email address' });
    expectError(await me.patch(`${base}/svc`, { reset_password: true }), 409, 'conflict');

    const list = await me.get(base);
    expect(list.body.roles.map((r: { name: string }) => r.name)).toEqual(['ana', 'ci', 'svc']);
  });
});

describe('role names', () => {
  it('follow Postgres rules and refuse reserved names, the gateway role and the tenant login', async () => {
    const { me, pgUser, base } = await tenantWithDb();
    const why = async (name: unknown) => fieldProblems(await me.post(base, { name, kind: 'password' })).name;
    expect(await why('postgres')).toBe('"postgres" is reserved by Postgres');
    expect(await why('public')).toBe('"public" is reserved by Postgres');
    expect(await why('pg_monitor')).toBe('must not start with pg_ (reserved for Postgres)');
    expect(await why('pgwake_admin')).toBe('must not start with pgwake_ (reserved for pgwake)');
    expect(await why('pgwake_other')).toBe('must not start with pgwake_ (reserved for pgwake)');
    expect(await why(pgUser)).toBe("is the tenant's own login (pg_user)");
    const shape = 'must start with a lowercase letter or underscore and contain only lowercase letters, digits, underscores and $';
    for (const bad of ['Alice', '1st', 'a.b', 'a-b', 'a@b', 'émile', 'a b']) expect(await why(bad), bad).toBe(shape);
    expect(await why('a'.repeat(64))).toBe('must be 1 to 63 characters long');
    expect(await why('')).toBe('must be 1 to 63 characters long');
    expect(await why(7)).toBe('must be string');
    for (const good of ['a', '_x', 'app_reader', 'r$1', 'a'.repeat(63)]) {
      expect((await me.post(base, { name: good, kind: 'password' })).status, good).toBe(201);
    }
  });

  it('say which field is unknown or missing', async () => {
    const { me, base } = await tenantWithDb();
    expect(fieldProblems(await me.post(base, { name: 'x' }))).toEqual({ kind: 'is required' });
    expect(fieldProblems(await me.post(base, { name: 'x', kind: 'ldap' }))).toEqual({ kind: 'must be one of password, oauth' });
    expect(fieldProblems(await me.post(base, { name: 'x', kind: 'password', superuser: true }))).toEqual({ superuser: 'is not a known field' });
    expect((await me.post(base, { name: 'x', kind: 'password' })).status).toBe(201);
    expect(fieldProblems(await me.patch(`${base}/x`, {}))).toEqual({ '(body)': 'must set at least one field' });
    expect(fieldProblems(await me.patch(`${base}/x`, { reset_password: false }))).toEqual({ reset_password: 'must be equal to constant' });
  });
});

describe('deleting', () => {
  it('removes the role, and only from its own db', async () => {
    const { me, dbId, base } = await tenantWithDb();
    const other = await me.post('/v2/tenants/acme/dbs', { name: 'other' });
    expect((await me.post(base, { name: 'app_user', kind: 'password' })).status).toBe(201);
    expect((await me.post('/v2/tenants/acme/dbs/other/roles', { name: 'app_user', kind: 'password' })).status).toBe(201);
    const del = await me.delete(`${base}/app_user`);
    expect(del.status).toBe(204);
    expectError(await me.get(`${base}/app_user`), 404, 'not_found');
    expectError(await me.delete(`${base}/app_user`), 404, 'not_found');
    expect(await stack.ctx.catalog.roles.byName(dbId, 'app_user')).toBeNull();
    expect(await stack.ctx.catalog.roles.byName(other.body.id, 'app_user')).not.toBeNull();
  });

  it('records role events without secrets', async () => {
    const { me, dbId, base } = await tenantWithDb();
    const made = await me.post(base, { name: 'ev', kind: 'password' });
    await me.patch(`${base}/ev`, { reset_password: true });
    await me.delete(`${base}/ev`);
    const { rows } = await stack.ctx.catalog.pool.query<{ type: string; data: Record<string, unknown> }>("SELECT type, data FROM events WHERE db_id = $1 AND type LIKE 'role.%' ORDER BY id", [dbId]);
    expect(rows.map((r) => r.type)).toEqual(['role.created', 'role.updated', 'role.deleted']);
    expect(JSON.stringify(rows)).not.toContain(made.body.password);
    expect(rows[1]!.data).toMatchObject({ role: 'ev', password_reset: true });
  });
});
