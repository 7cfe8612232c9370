import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { apiTenant, connect, currentUser, refusal, signAsControlApi, strangerKey, TestIssuer, type ApiTenant } from './access-support.js';

const run = promisify(execFile);

// Oauth roles end to end: tokens from POST /v2/credentials and from an external
// OIDC issuer, given as the password by psql and node-postgres over TLS.
let stack: TestStack;
let idp: TestIssuer;
let t: ApiTenant;

beforeAll(async () => {
  idp = await TestIssuer.start();
  // Many refusals from 127.0.0.1 on purpose: no bans here (test/gateway/access.test.ts tests them).
  stack = await startTestStack({ PGWAKE_TOKEN_CLOCK_SKEW_SECONDS: '0', PGWAKE_OIDC_ISSUERS: idp.config(), PGWAKE_SIGNUP_RATE_LIMIT_PER_ADDRESS: '1000', PGWAKE_BAN_FAILED_LOGINS: '0' });
  t = await apiTenant(stack);
  expect((await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'ana', kind: 'oauth', identity: { email: 'ana@example.com' } })).status).toBe(201);
  expect((await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'svc', kind: 'oauth', identity: { sub: 'svc-7', issuer: idp.issuer } })).status).toBe(201);
  expect((await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'bot', kind: 'oauth' })).status).toBe(201);
});
afterAll(async () => {
  await stack?.destroy();
  await idp?.stop();
});

async function credential(role: string, o: { ttl_seconds?: number; db?: string | null } = {}): Promise<string> {
  const res = await t.api.post('/v2/credentials', { tenant: 'acme', role, ...(o.db === null ? {} : { db: o.db ?? 'app' }), ...(o.ttl_seconds ? { ttl_seconds: o.ttl_seconds } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.token;
}

describe('a token as the password', () => {
  it('logs psql in (PGPASSWORD=<token>, sslmode=require)', async () => {
    const token = await credential('ana');
    const { stdout } = await run('psql', [`host=127.0.0.1 port=${stack.gateway!.port} user=ana dbname=app sslmode=require options=endpoint=${t.dbId}`, '-Atc', "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"], {
      env: { ...process.env, PGPASSWORD: token, PGCONNECT_TIMEOUT: '30' },
    });
    // The gateway holds the client's TLS; its own link to the compute is local.
    expect(stdout.trim()).toBe('ana false');
  });

  it('logs node-postgres in, for the role the token names, in the db it names', async () => {
    const client = await connect(stack, { user: 'bot', password: await credential('bot'), endpoint: t.dbId });
    expect(await currentUser(client)).toBe('bot');
    expect((await client.query('SELECT current_database() AS d')).rows[0].d).toBe('app');
    await client.end();
  });

  it('is refused without TLS, with a clear error, before the token is even asked for', async () => {
    expect(await refusal(stack, { user: 'ana', password: await credential('ana'), endpoint: t.dbId, tls: false })).toMatchObject({
      code: '28000',
      message: 'role "ana" logs in with an OAuth token, which this gateway accepts only over TLS',
      hint: 'connect with sslmode=require',
    });
  });

  it('valid for the whole tenant logs the role in to each db that has it', async () => {
    const other = await t.api.post('/v2/tenants/acme/dbs', { name: 'other' });
    expect((await t.api.post('/v2/tenants/acme/dbs/other/roles', { name: 'bot', kind: 'oauth' })).status).toBe(201);
    const token = await credential('bot', { db: null });
    for (const [endpoint, name] of [
      [t.dbId, 'app'],
      [other.body.id, 'other'],
    ]) {
      const c = await connect(stack, { user: 'bot', password: token, endpoint, database: name });
      expect((await c.query('SELECT current_database() AS d')).rows[0].d).toBe(name);
      await c.end();
    }
  });

  it('keeps a session working after the token expired', async () => {
    const client = await connect(stack, { user: 'ana', password: await credential('ana', { ttl_seconds: 1 }), endpoint: t.dbId });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await currentUser(client)).toBe('ana');
    await client.end();
  });
});

describe('tokens that are refused with 28P01', () => {
  const failed = (role: string) => `password authentication failed for user "${role}"`;

  it('an expired token, with a message that says it expired', async () => {
    const token = await credential('ana', { ttl_seconds: 1 });
    await new Promise((r) => setTimeout(r, 2_100));
    const err = await refusal(stack, { user: 'ana', password: token, endpoint: t.dbId });
    expect(err.code).toBe('28P01');
    expect(err.message).toMatch(/^password authentication failed for user "ana": the token expired at \d{4}-\d\d-\d\dT/);
  });

  it('a token for another role, and for another db', async () => {
    expect(await refusal(stack, { user: 'bot', password: await credential('ana'), endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('bot'), detail: 'the token is not for role "bot" (claim pgwake_role: "ana")' });
    const elsewhere = await t.api.post('/v2/tenants/acme/dbs', { name: 'third' });
    expect((await t.api.post('/v2/tenants/acme/dbs/third/roles', { name: 'bot', kind: 'oauth' })).status).toBe(201);
    expect(await refusal(stack, { user: 'bot', password: await credential('bot'), endpoint: elsewhere.body.id, database: 'third' })).toEqual({
      code: '28P01',
      message: failed('bot'),
      detail: 'the token is not for database "third"',
    });
  });

  it('a token for another audience', async () => {
    const wrongAud = await signAsControlApi(stack, { pgwake_role: 'bot', pgwake_db: t.dbId }, { audience: 'someone-else' });
    expect(await refusal(stack, { user: 'bot', password: wrongAud, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('bot'), detail: 'the token is for another audience' });
    const external = await idp.sign({ pg_role: 'svc', sub: 'svc-7' }, { audience: 'not-pgwake' });
    expect(await refusal(stack, { user: 'svc', password: external, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('svc'), detail: 'the token is for another audience' });
  });

  it('a token whose signature does not verify', async () => {
    const token = await credential('bot');
    const [h, p, sig] = token.split('.');
    const flipped = `${h}.${p}.${sig!.slice(0, 10)}${sig![10] === 'A' ? 'B' : 'A'}${sig!.slice(11)}`;
    expect(await refusal(stack, { user: 'bot', password: flipped, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('bot'), detail: "the token's signature does not verify" });
    // Claims changed under a real signature.
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), pgwake_role: 'ana' })).toString('base64url')}.${sig}`;
    expect(await refusal(stack, { user: 'ana', password: forged, endpoint: t.dbId })).toMatchObject({ code: '28P01', detail: "the token's signature does not verify" });
    // Signed by a stranger under the trusted issuer's kid.
    const stranger = await idp.sign({ pg_role: 'svc', sub: 'svc-7' }, { key: await strangerKey() });
    expect(await refusal(stack, { user: 'svc', password: stranger, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('svc'), detail: "the token's signature does not verify" });
  });

  it('an unsigned token (alg: none), a token of an issuer nobody trusts, and what is not a token', async () => {
    const none = new UnsecuredJWT({ pgwake_role: 'bot', pgwake_db: t.dbId }).setIssuer('pgwake').setAudience('pgwake').setIssuedAt().setExpirationTime('1h').encode();
    expect(await refusal(stack, { user: 'bot', password: none, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('bot'), detail: 'the token is not signed (alg "none")' });
    const untrusted = await idp.sign({ pg_role: 'svc', sub: 'svc-7' }, { issuer: 'https://evil.example.test' });
    expect(await refusal(stack, { user: 'svc', password: untrusted, endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('svc'), detail: 'the token\'s issuer "https://evil.example.test" is not trusted' });
    expect(await refusal(stack, { user: 'bot', password: 'hunter2', endpoint: t.dbId })).toEqual({ code: '28P01', message: failed('bot'), detail: 'the password is not a JWT' });
  });
});

describe('an external OIDC issuer', () => {
  it("logs a role in with its token when the role's identity matches", async () => {
    const token = await idp.sign({ pg_role: 'svc', sub: 'svc-7' });
    const client = await connect(stack, { user: 'svc', password: token, endpoint: t.dbId });
    expect(await currentUser(client)).toBe('svc');
    await client.end();
    const byMail = await idp.sign({ pg_role: ['reader', 'ana'], sub: 'u-1', email: 'Ana@Example.com' });
    const ana = await connect(stack, { user: 'ana', password: byMail, endpoint: t.dbId });
    expect(await currentUser(ana)).toBe('ana');
    await ana.end();
    expect(idp.fetches.n).toBeGreaterThanOrEqual(1);
  });

  it('is refused for another identity, an unverified email, an unbound role and an expired token', async () => {
    const expectDetail = async (user: string, token: string, detail: string | RegExp) => {
      const err = await refusal(stack, { user, password: token, endpoint: t.dbId });
      expect(err.code).toBe('28P01');
      if (typeof detail === 'string') expect(err.detail).toBe(detail);
      else expect(err.message).toMatch(detail);
    };
    await expectDetail('svc', await idp.sign({ pg_role: 'svc', sub: 'someone-else' }), 'the token\'s subject is not the one role "svc" is bound to');
    await expectDetail('ana', await idp.sign({ pg_role: 'ana', email: 'ana@example.com', email_verified: false }), "the token's email is not verified");
    await expectDetail('bot', await idp.sign({ pg_role: 'bot', sub: 'x' }), 'role "bot" is bound to no identity: only credentials from POST /v2/credentials log it in');
    await expectDetail('svc', await idp.sign({ pg_role: 'svc', sub: 'svc-7' }, { expiresIn: Math.floor(Date.now() / 1000) - 5 }), /the token expired at/);
  });
});

describe('a password role and an oauth role in the same db', () => {
  it('each log in their own way, see what the tenant granted them, and nothing else', async () => {
    const pw = await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'reporting', kind: 'password' });
    expect(pw.status).toBe(201);
    const owner = await connect(stack, { user: t.pgUser, password: t.pgPassword });
    await owner.query('CREATE TABLE IF NOT EXISTS shared (v text)');
    await owner.query("INSERT INTO shared VALUES ('hello')");
    await owner.query('GRANT SELECT ON shared TO reporting, ana');

    const [withPassword, withToken] = await Promise.all([
      connect(stack, { user: 'reporting', password: pw.body.password, endpoint: t.dbId }),
      connect(stack, { user: 'ana', password: await credential('ana'), endpoint: t.dbId }),
    ]);
    expect(await currentUser(withPassword)).toBe('reporting');
    expect(await currentUser(withToken)).toBe('ana');
    expect((await withPassword.query('SELECT v FROM shared')).rows).toEqual([{ v: 'hello' }]);
    expect((await withToken.query('SELECT v FROM shared')).rows).toEqual([{ v: 'hello' }]);
    await expect(withToken.query("INSERT INTO shared VALUES ('no')")).rejects.toMatchObject({ code: '42501' });

    // A password role logs in with SCRAM and its own password only (and no token: it is not an oauth role).
    expect(await refusal(stack, { user: 'reporting', password: 'wrong', endpoint: t.dbId })).toMatchObject({ code: '28P01', message: 'password authentication failed for user "reporting"' });
    expect(await refusal(stack, { user: 'reporting', password: await credential('ana'), endpoint: t.dbId })).toMatchObject({ code: '28P01' });
    // Without the endpoint, a db's role is nobody.
    expect(await refusal(stack, { user: 'reporting', password: pw.body.password })).toMatchObject({ code: '28P01', message: 'password authentication failed for user "reporting"' });
    await Promise.all([withPassword.end(), withToken.end(), owner.end()]);
  });
});

describe('a role deleted through the API', () => {
  it('cannot log in any more, at once, and its sessions on the running compute end', async () => {
    const pw = await t.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'leaving', kind: 'password' });
    const session = await connect(stack, { user: 'leaving', password: pw.body.password, endpoint: t.dbId });
    const oauthSession = await connect(stack, { user: 'bot', password: await credential('bot'), endpoint: t.dbId });
    const stillValid = await credential('bot');
    const ended = new Promise<Error>((resolve) => session.on('error', resolve));

    expect((await t.api.delete('/v2/tenants/acme/dbs/app/roles/leaving')).status).toBe(204);
    expect(await refusal(stack, { user: 'leaving', password: pw.body.password, endpoint: t.dbId })).toMatchObject({ code: '28P01' });
    expect((await ended).message).toMatch(/terminat/);

    expect((await t.api.delete('/v2/tenants/acme/dbs/app/roles/bot')).status).toBe(204);
    expect(await refusal(stack, { user: 'bot', password: stillValid, endpoint: t.dbId })).toMatchObject({ code: '28P01', message: 'password authentication failed for user "bot"' });
    await expect(oauthSession.query('SELECT 1')).rejects.toThrow();
  });
});

describe('signing key rotation', () => {
  it('keeps a token of the old key logging in until it expires', async () => {
    const rot = await startTestStack({ PGWAKE_SIGNING_KEY_ROTATION_SECONDS: '2', PGWAKE_CREDENTIAL_TTL_SECONDS: '6', PGWAKE_TOKEN_CLOCK_SKEW_SECONDS: '0' });
    try {
      const r = await apiTenant(rot);
      expect((await r.api.post('/v2/tenants/acme/dbs/app/roles', { name: 'ana', kind: 'oauth' })).status).toBe(201);
      const issue = async () => (await r.api.post('/v2/credentials', { tenant: 'acme', db: 'app', role: 'ana' })).body as { token: string; kid: string; expires_at: string };
      const old = await issue();
      const first = await connect(rot, { user: 'ana', password: old.token, endpoint: r.dbId });
      await first.end();
      await new Promise((res) => setTimeout(res, 2_100));
      const fresh = await issue();
      expect(fresh.kid).not.toBe(old.kid);
      // Both keys verify now: the new one, and the retired one for its live tokens.
      for (const token of [old.token, fresh.token]) {
        const c = await connect(rot, { user: 'ana', password: token, endpoint: r.dbId });
        expect(await currentUser(c)).toBe('ana');
        await c.end();
      }
      await new Promise((res) => setTimeout(res, Math.max(0, Date.parse(old.expires_at) - Date.now()) + 1_100));
      expect((await refusal(rot, { user: 'ana', password: old.token, endpoint: r.dbId })).message).toMatch(/the token expired at/);
      const c = await connect(rot, { user: 'ana', password: fresh.token, endpoint: r.dbId });
      await c.end();
    } finally {
      await rot.destroy();
    }
  });
});
