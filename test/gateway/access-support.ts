import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import pg from 'pg';
import { expect } from 'vitest';
import type { TestStack } from '../support/stack.js';
import { ApiClient } from '../control-api/client.js';

/** A tenant `acme` with db `app`, made through the control API as a user would. */
export interface ApiTenant {
  api: ApiClient;
  pgUser: string;
  pgPassword: string;
  dbId: string;
  tenantId: string;
}

let accounts = 0;

export async function apiTenant(stack: TestStack, o: { db?: string; start?: boolean } = {}): Promise<ApiTenant> {
  const anon = new ApiClient(stack.controlApi!.url);
  const signed = await anon.post('/v2/accounts', { name: `gateway access ${++accounts}` });
  expect(signed.status, JSON.stringify(signed.body)).toBe(201);
  const api = anon.withKey(signed.body.api_key);
  const t = await api.post('/v2/tenants', { name: 'acme' });
  expect(t.status).toBe(201);
  const db = await api.post('/v2/tenants/acme/dbs', { name: o.db ?? 'app', start_immediately: o.start ?? false });
  expect(db.status, JSON.stringify(db.body)).toBe(201);
  return { api, pgUser: t.body.pg_user, pgPassword: t.body.pg_password, dbId: db.body.id, tenantId: t.body.tenant.id };
}

/** Connects through the gateway and returns the client, or throws the server's error. */
export async function connect(stack: TestStack, c: pg.ClientConfig & { endpoint?: string; tls?: boolean }): Promise<pg.Client> {
  const { endpoint, tls, ...rest } = c;
  const client = new pg.Client({
    host: '127.0.0.1',
    port: stack.gateway!.port,
    database: 'app',
    ssl: tls === false ? false : { rejectUnauthorized: false },
    ...(endpoint ? { options: `endpoint=${endpoint}` } : {}),
    ...rest,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The error the gateway answers a login with: code, message, detail, hint. */
export async function refusal(stack: TestStack, c: Parameters<typeof connect>[1]): Promise<{ code: string; message: string; detail?: string; hint?: string }> {
  try {
    const client = await connect(stack, c);
    await client.end();
  } catch (err) {
    const e = err as { code?: string; message: string; detail?: string; hint?: string };
    if (!e.code) throw err;
    return { code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}), ...(e.hint ? { hint: e.hint } : {}) };
  }
  throw new Error('the login was accepted');
}

export async function currentUser(client: pg.Client): Promise<string> {
  return (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
}

/**
 * An OIDC issuer of the test's own: an RSA key whose JWKS it serves over HTTP,
 * as an identity provider does (the gateway fetches it with createRemoteJWKSet).
 */
export class TestIssuer {
  private constructor(readonly issuer: string, readonly jwksUrl: string, private readonly key: CryptoKey, readonly kid: string, private readonly server: http.Server, readonly fetches: { n: number }) {}

  static async start(issuer = 'https://idp.example.test'): Promise<TestIssuer> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = 'test-key-1';
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    const fetches = { n: 0 };
    const server = http.createServer((req, res) => {
      fetches.n++;
      if (req.url !== '/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return new TestIssuer(issuer, `http://127.0.0.1:${port}/jwks.json`, privateKey, kid, server, fetches);
  }

  /** `PGWAKE_OIDC_ISSUERS` naming this issuer. */
  config(o: { audience?: string; roleClaim?: string; dbClaim?: string } = {}): string {
    return JSON.stringify([{ issuer: this.issuer, jwks_url: this.jwksUrl, audience: o.audience ?? 'pgwake-gateway', role_claim: o.roleClaim ?? 'pg_role', ...(o.dbClaim ? { db_claim: o.dbClaim } : {}) }]);
  }

  /** A token as this issuer would sign it; `claims` and `o` override the defaults (an hour, this issuer, audience pgwake-gateway). */
  sign(claims: JWTPayload, o: { audience?: string; expiresIn?: string | number; key?: CryptoKey; kid?: string; issuer?: string } = {}): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? this.kid })
      .setIssuer(o.issuer ?? this.issuer)
      .setAudience(o.audience ?? 'pgwake-gateway')
      .setIssuedAt()
      .setExpirationTime(o.expiresIn ?? '1h')
      .sign(o.key ?? this.key);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A key nobody trusts: tokens it signs claim a trusted kid but do not verify. */
export async function strangerKey(): Promise<CryptoKey> {
  return (await generateKeyPair('RS256')).privateKey;
}

/** Signs with the control API's own current key, read from the catalog: to make tokens the API itself would never issue. */
export async function signAsControlApi(stack: TestStack, claims: JWTPayload, o: { audience?: string; expiresIn?: string | number } = {}): Promise<string> {
  const [key] = await stack.ctx.catalog.signingKeys.published();
  if (!key) throw new Error('no signing key yet: issue a credential first');
  const privateKey = (await importJWK(JSON.parse(stack.ctx.secrets.open(key.private_jwk)) as JWK, key.alg)) as CryptoKey;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuer(stack.config.credentialIssuer)
    .setAudience(o.audience ?? stack.config.credentialAudience)
    .setIssuedAt()
    .setExpirationTime(o.expiresIn ?? '1h')
    .sign(privateKey);
}
