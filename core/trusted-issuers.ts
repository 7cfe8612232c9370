/**
 * External OIDC issuers whose tokens log in oauth roles at the gateway
 * (`PGWAKE_OIDC_ISSUERS`): a JSON array, each entry naming the issuer, where its
 * keys are (a JWKS URL or the keys themselves), the audience its tokens must be
 * for, and the claim that names the Postgres role.
 */
export interface TrustedIssuerConfig {
  /** The token's `iss`, exactly. */
  issuer: string;
  /** Fetched (and cached) by the gateway; one of `jwksUrl` and `jwks` is set. */
  jwksUrl: string | null;
  /** Static public keys: `{keys: [JWK, …]}`. */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** Accepted `aud` values; the token must name one of them. */
  audience: string[];
  /** The claim that names the role (default `role`); a string, or an array that must contain the role. */
  roleClaim: string;
  /** A claim that must equal the db's id, when the issuer can put one in its tokens; null: not checked. */
  dbClaim: string | null;
  /** Signature algorithms accepted (never `none`). */
  algorithms: string[];
}

const KNOWN_FIELDS = new Set(['issuer', 'jwks_url', 'jwks', 'audience', 'role_claim', 'db_claim', 'algorithms']);
export const DEFAULT_TOKEN_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];
const ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

/** Parses and checks `PGWAKE_OIDC_ISSUERS`; throws saying which entry and field is wrong. */
export function parseTrustedIssuers(raw: string): TrustedIssuerConfig[] {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new Error('expected a JSON array of issuers');
  }
  if (!Array.isArray(value)) throw new Error('expected a JSON array of issuers');
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const at = (field: string) => `[${i}].${field}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new Error(`[${i}]: expected an object`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!KNOWN_FIELDS.has(k)) throw new Error(`${at(k)}: not a known field (${[...KNOWN_FIELDS].join(', ')})`);
    const issuer = nonEmpty(e.issuer, at('issuer'));
    if (seen.has(issuer)) throw new Error(`${at('issuer')}: "${issuer}" is listed twice`);
    seen.add(issuer);
    if ((e.jwks_url === undefined) === (e.jwks === undefined)) throw new Error(`[${i}]: set exactly one of jwks_url and jwks`);
    let jwksUrl: string | null = null;
    if (e.jwks_url !== undefined) {
      jwksUrl = nonEmpty(e.jwks_url, at('jwks_url'));
      let url: URL;
      try {
        url = new URL(jwksUrl);
      } catch {
        throw new Error(`${at('jwks_url')}: not a URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${at('jwks_url')}: expected an https:// URL`);
    }
    let jwks: TrustedIssuerConfig['jwks'] = null;
    if (e.jwks !== undefined) {
      const keys = (e.jwks as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => k === null || typeof k !== 'object' || typeof (k as { kty?: unknown }).kty !== 'string')) {
        throw new Error(`${at('jwks')}: expected {"keys": [JWK, …]} with at least one public key`);
      }
      if (keys.some((k) => 'd' in (k as object))) throw new Error(`${at('jwks')}: holds a private key; give only public keys`);
      jwks = { keys: keys as Record<string, unknown>[] };
    }
    const audience = typeof e.audience === 'string' ? [nonEmpty(e.audience, at('audience'))] : Array.isArray(e.audience) && e.audience.length > 0 ? e.audience.map((a, j) => nonEmpty(a, `${at('audience')}[${j}]`)) : null;
    if (!audience) throw new Error(`${at('audience')}: expected the audience the tokens are for (a string or an array of strings)`);
    const algorithms = e.algorithms === undefined ? DEFAULT_TOKEN_ALGORITHMS : Array.isArray(e.algorithms) && e.algorithms.length > 0 ? e.algorithms.map((a, j) => nonEmpty(a, `${at('algorithms')}[${j}]`)) : null;
    if (!algorithms) throw new Error(`${at('algorithms')}: expected a non-empty array`);
    const bad = algorithms.find((a) => !ALGORITHMS.has(a));
    if (bad) throw new Error(`${at('algorithms')}: "${bad}" is not an asymmetric signature algorithm pgwake accepts (${[...ALGORITHMS].join(', ')})`);
    return {
      issuer,
      jwksUrl,
      jwks,
      audience,
      roleClaim: e.role_claim === undefined ? 'role' : nonEmpty(e.role_claim, at('role_claim')),
      dbClaim: e.db_claim === undefined ? null : nonEmpty(e.db_claim, at('db_claim')),
      algorithms,
    };
  });
}

function nonEmpty(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw new Error(`${where}: expected a non-empty string`);
  return v;
}
