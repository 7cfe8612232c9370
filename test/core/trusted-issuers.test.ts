import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN_ALGORITHMS, loadConfig, parseTrustedIssuers } from '../../core/index.js';

const KEY = { kty: 'RSA', n: 'abc', e: 'AQAB', kid: 'k1' };

describe('PGWAKE_OIDC_ISSUERS', () => {
  it('reads issuers with a JWKS URL or static keys, with defaults for the role claim and algorithms', () => {
    const parsed = parseTrustedIssuers(
      JSON.stringify([
        { issuer: 'https://idp.example.com', jwks_url: 'https://idp.example.com/jwks', audience: 'pgwake' },
        { issuer: 'https://other.example.com', jwks: { keys: [KEY] }, audience: ['a', 'b'], role_claim: 'pg_role', db_claim: 'pg_db', algorithms: ['ES256'] },
      ]),
    );
    expect(parsed).toEqual([
      { issuer: 'https://idp.example.com', jwksUrl: 'https://idp.example.com/jwks', jwks: null, audience: ['pgwake'], roleClaim: 'role', dbClaim: null, algorithms: DEFAULT_TOKEN_ALGORITHMS },
      { issuer: 'https://other.example.com', jwksUrl: null, jwks: { keys: [KEY] }, audience: ['a', 'b'], roleClaim: 'pg_role', dbClaim: 'pg_db', algorithms: ['ES256'] },
    ]);
  });

  it('says which entry and field is wrong', () => {
    const why = (v: unknown) => {
      try {
        parseTrustedIssuers(typeof v === 'string' ? v : JSON.stringify(v));
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    const ok = { issuer: 'i', jwks_url: 'https://x/jwks', audience: 'a' };
    expect(why('nope')).toBe('expected a JSON array of issuers');
    expect(why({})).toBe('expected a JSON array of issuers');
    expect(why([{ ...ok, jwks: { keys: [KEY] } }])).toBe('[0]: set exactly one of jwks_url and jwks');
    expect(why([{ issuer: 'i', audience: 'a' }])).toBe('[0]: set exactly one of jwks_url and jwks');
    expect(why([ok, { ...ok }])).toBe('[1].issuer: "i" is listed twice');
    expect(why([{ ...ok, audience: [] }])).toBe('[0].audience: expected the audience the tokens are for (a string or an array of strings)');
    expect(why([{ ...ok, jwks_url: 'ftp://x' }])).toBe('[0].jwks_url: expected an https:// URL');
    expect(why([{ issuer: 'i', jwks: { keys: [{ ...KEY, d: 'secret' }] }, audience: 'a' }])).toBe('[0].jwks: holds a private key; give only public keys');
    expect(why([{ ...ok, algorithms: ['HS256'] }])).toMatch(/^\[0\]\.algorithms: "HS256" is not an asymmetric signature algorithm/);
    expect(why([{ ...ok, algorithms: ['none'] }])).toMatch(/"none" is not an asymmetric signature algorithm/);
    expect(why([{ ...ok, scope: 'x' }])).toMatch(/^\[0\]\.scope: not a known field/);
    expect(why([ok])).toBe('accepted');
  });

  it('is read from the environment and from a PGWAKE_CONFIG file as JSON itself', async () => {
    const issuers = [{ issuer: 'https://idp.example.com', jwks_url: 'https://idp.example.com/jwks', audience: 'pgwake' }];
    expect(loadConfig({ PGWAKE_OIDC_ISSUERS: JSON.stringify(issuers) }).oidcIssuers?.[0]?.issuer).toBe('https://idp.example.com');
    expect(loadConfig({}).oidcIssuers).toBeUndefined();
    const dir = await mkdtemp(path.join(tmpdir(), 'pgwake-config-'));
    try {
      const file = path.join(dir, 'config.json');
      await writeFile(file, JSON.stringify({ PGWAKE_OIDC_ISSUERS: issuers }));
      expect(loadConfig({ PGWAKE_CONFIG: file }).oidcIssuers?.[0]?.jwksUrl).toBe('https://idp.example.com/jwks');
    } finally {
      await rm(dir, { recursive: true });
    }
    expect(() => loadConfig({ PGWAKE_OIDC_ISSUERS: JSON.stringify([{ ...issuers[0], issuer: 'pgwake' }]) })).toThrow('PGWAKE_OIDC_ISSUERS: an external issuer must not use the name of PGWAKE_CREDENTIAL_ISSUER');
    expect(() => loadConfig({ PGWAKE_OIDC_ISSUERS: '[1]' })).toThrow('PGWAKE_OIDC_ISSUERS: [0]: expected an object');
  });
});
