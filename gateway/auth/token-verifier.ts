import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Catalog, Config, DbRecord, RoleRecord, TrustedIssuerConfig } from '../../core/index.js';

/** Claims of the control API's own credentials (control-api/routes/credentials.ts says the same names). */
const CLAIM = { role: 'pgwake_role', db: 'pgwake_db', tenant: 'pgwake_tenant' } as const;
/** The control API signs with ES256 (control-api/credential-signer.ts). */
const INTERNAL_ALGORITHMS = ['ES256'];
/** How often the catalog's published keys are read again at most, when a token names a kid not seen yet. */
const KEY_REFRESH_MIN_MS = 1_000;
/** And at least this often, so a retired key that left the catalog stops verifying. */
const KEY_REFRESH_MAX_MS = 60_000;

/** Why a token does not log its role in. `expired` carries when it expired. */
export class TokenRefusal extends Error {
  constructor(readonly reason: 'expired' | 'invalid', message: string, readonly expiredAt: Date | null = null) {
    super(message);
  }
}

interface CatalogKeys {
  kids: Set<string>;
  keys: JWTVerifyGetKey;
  readAt: number;
}

interface Issuer {
  issuer: string;
  audience: string[];
  algorithms: string[];
  keys: JWTVerifyGetKey;
  internal: boolean;
  roleClaim: string;
  dbClaim: string | null;
}

/**
 * Checks a token given as an oauth role's password (DESIGN §4) with jose: its
 * signature by a key of a trusted issuer (the control API's keys from the catalog,
 * external issuers' from their JWKS), issuer, audience, expiry and not-before
 * with a small clock skew, and that it names this role and db. `alg: none` and
 * symmetric algorithms are never accepted.
 */
export class TokenVerifier {
  readonly #issuers = new Map<string, Issuer>();
  #catalogKeys: CatalogKeys | null = null;
  #reading: Promise<CatalogKeys> | null = null;

  constructor(private readonly config: Config, private readonly catalog: Catalog) {
    this.#issuers.set(config.credentialIssuer, {
      issuer: config.credentialIssuer,
      audience: [config.credentialAudience],
      algorithms: INTERNAL_ALGORITHMS,
      keys: (header, token) => this.#catalogKey(header, token),
      internal: true,
      roleClaim: CLAIM.role,
      dbClaim: null,
    });
    for (const external of config.oidcIssuers ?? []) this.#issuers.set(external.issuer, externalIssuer(external));
  }

  /** Resolves when `token` logs `role` of `db` in; throws TokenRefusal saying why not. */
  async verify(token: string, role: RoleRecord, db: DbRecord): Promise<JWTPayload> {
    let iss: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') throw new TokenRefusal('invalid', 'the token is not signed (alg "none")');
      iss = decodeJwt(token).iss;
    } catch (err) {
      if (err instanceof TokenRefusal) throw err;
      throw new TokenRefusal('invalid', 'the password is not a JWT');
    }
    const issuer = iss === undefined ? undefined : this.#issuers.get(iss);
    if (!issuer) throw new TokenRefusal('invalid', iss === undefined ? 'the token names no issuer' : `the token's issuer "${iss}" is not trusted`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, issuer.keys, {
        issuer: issuer.issuer,
        audience: issuer.audience,
        algorithms: issuer.algorithms,
        clockTolerance: this.config.tokenClockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw refusalOf(err);
    }
    this.#checkNames(issuer, payload, role, db);
    return payload;
  }

  /** The token must name this role, and this db (or its tenant); an external one must carry the role's identity. */
  #checkNames(issuer: Issuer, payload: JWTPayload, role: RoleRecord, db: DbRecord): void {
    const named = payload[issuer.roleClaim];
    const namesRole = named === role.name || (Array.isArray(named) && named.includes(role.name));
    if (!namesRole) throw new TokenRefusal('invalid', `the token is not for role "${role.name}" (claim ${issuer.roleClaim}: ${JSON.stringify(named ?? null)})`);
    if (issuer.internal) {
      if (payload[CLAIM.db] !== db.id && payload[CLAIM.tenant] !== db.tenant_id) throw new TokenRefusal('invalid', `the token is not for database "${db.name}"`);
      return;
    }
    if (issuer.dbClaim !== null && payload[issuer.dbClaim] !== db.id) throw new TokenRefusal('invalid', `the token is not for database "${db.name}" (claim ${issuer.dbClaim})`);
    // A trusted issuer vouches for people; the role says which person may be it.
    if (role.identity === null || role.identity_claim === null) throw new TokenRefusal('invalid', `role "${role.name}" is bound to no identity: only credentials from POST /v2/credentials log it in`);
    if (role.identity_issuer !== null && role.identity_issuer !== issuer.issuer) throw new TokenRefusal('invalid', `role "${role.name}" takes tokens of another issuer`);
    if (role.identity_claim === 'sub') {
      if (payload.sub !== role.identity) throw new TokenRefusal('invalid', `the token's subject is not the one role "${role.name}" is bound to`);
    } else {
      const email = typeof payload.email === 'string' ? payload.email.toLowerCase() : null;
      if (email !== role.identity) throw new TokenRefusal('invalid', `the token's email is not the one role "${role.name}" is bound to`);
      if (payload.email_verified === false) throw new TokenRefusal('invalid', "the token's email is not verified");
    }
  }

  /** The control API's keys, from the catalog: read again when a token names a kid not among them (a rotation), at most once a second. */
  async #catalogKey(header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) {
    let set = await this.#catalogKeySet(false);
    if (header.kid !== undefined && !set.kids.has(header.kid)) set = await this.#catalogKeySet(true);
    return set.keys(header, token);
  }

  async #catalogKeySet(unknownKid: boolean): Promise<CatalogKeys> {
    const have = this.#catalogKeys;
    if (have) {
      const age = Date.now() - have.readAt;
      if (!unknownKid && age < KEY_REFRESH_MAX_MS) return have;
      // A kid not seen yet (a key made a moment ago) waits for the next read rather than failing; made-up kids cost one read a second.
      if (unknownKid && age < KEY_REFRESH_MIN_MS && !this.#reading) await new Promise((r) => setTimeout(r, KEY_REFRESH_MIN_MS - age));
    }
    this.#reading ??= this.catalog.signingKeys
      .published()
      .then((rows) => {
        const jwks: JSONWebKeySet = { keys: rows.map((k) => ({ ...(k.public_jwk as object), kid: k.kid, alg: k.alg })) };
        this.#catalogKeys = { kids: new Set(rows.map((k) => k.kid)), keys: createLocalJWKSet(jwks), readAt: Date.now() };
        return this.#catalogKeys;
      })
      .finally(() => {
        this.#reading = null;
      });
    return this.#reading;
  }
}

function externalIssuer(c: TrustedIssuerConfig): Issuer {
  const keys: JWTVerifyGetKey = c.jwksUrl
    ? createRemoteJWKSet(new URL(c.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: 5_000 })
    : createLocalJWKSet(c.jwks as JSONWebKeySet);
  return { issuer: c.issuer, audience: c.audience, algorithms: c.algorithms, keys, internal: false, roleClaim: c.roleClaim, dbClaim: c.dbClaim };
}

/** jose's errors, in words for the client's ErrorResponse detail. */
function refusalOf(err: unknown): TokenRefusal {
  if (err instanceof errors.JWTExpired) {
    const exp = typeof err.payload.exp === 'number' ? new Date(err.payload.exp * 1000) : null;
    return new TokenRefusal('expired', `the token expired${exp ? ` at ${exp.toISOString()}` : ''}`, exp);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return new TokenRefusal('invalid', 'the token is for another audience');
      case 'iss':
        return new TokenRefusal('invalid', 'the token is of another issuer');
      case 'nbf':
        return new TokenRefusal('invalid', 'the token is not valid yet');
      case 'exp':
        return new TokenRefusal('invalid', 'the token has no expiry');
      default:
        return new TokenRefusal('invalid', `the token's ${err.claim} claim is not acceptable`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenRefusal('invalid', "the token's signature does not verify");
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenRefusal('invalid', 'the token was signed by a key its issuer does not publish');
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenRefusal('invalid', 'the token is signed with an algorithm that is not accepted');
  if (err instanceof errors.JWKSTimeout || (err as { code?: string }).code === 'ERR_JWKS_TIMEOUT') return new TokenRefusal('invalid', "the issuer's keys could not be fetched in time");
  if (err instanceof errors.JOSEError) return new TokenRefusal('invalid', `the token is not valid (${err.code})`);
  return new TokenRefusal('invalid', 'the token could not be checked');
}
