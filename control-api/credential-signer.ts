import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { NewSigningKey, RoleContext, SigningKeyRecord } from '../core/index.js';

/** ES256: small keys and signatures, and every JWT library verifies it. */
const ALG = 'ES256';
/** How often a process looks in the catalog for a key another process (or an operator) put there. */
const RECHECK_MS = 60_000;

export interface SignedCredential {
  token: string;
  kid: string;
  issuedAt: Date;
  expiresAt: Date;
}

/**
 * Signs database credentials (JWTs) with the catalog's signing key and publishes
 * the keys as a JWKS. The key is made on first use and replaced once it is older
 * than `PGWAKE_SIGNING_KEY_ROTATION_SECONDS`; a replaced key stays published until
 * every token it signed has expired, so no token breaks by a rotation.
 */
export class CredentialSigner {
  #current: { record: SigningKeyRecord; key: CryptoKey; checkedAt: number } | null = null;
  #loading: Promise<{ record: SigningKeyRecord; key: CryptoKey }> | null = null;

  constructor(private readonly ctx: RoleContext) {}

  /** Signs `claims` for `ttlSeconds` with the key of the moment; iss, aud, iat, exp, jti and the kid header are set here. */
  async sign(claims: Record<string, unknown>, subject: string, ttlSeconds: number): Promise<SignedCredential> {
    const { record, key } = await this.#signingKey();
    const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const expiresAt = new Date(issuedAt.getTime() + ttlSeconds * 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: record.alg, kid: record.kid, typ: 'JWT' })
      .setIssuer(this.ctx.config.credentialIssuer)
      .setAudience(this.ctx.config.credentialAudience)
      .setSubject(subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(key);
    return { token, kid: record.kid, issuedAt, expiresAt };
  }

  /** The public keys verifiers need: the signing key (made if there is none yet) and retired keys whose tokens may still live. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.#signingKey();
    const keys = await this.ctx.catalog.signingKeys.published();
    return { keys: keys.map((k) => ({ ...(k.public_jwk as JWK), kid: k.kid, alg: k.alg, use: 'sig' })) };
  }

  async #signingKey(): Promise<{ record: SigningKeyRecord; key: CryptoKey }> {
    const c = this.#current;
    const now = Date.now();
    if (c && now - c.checkedAt < RECHECK_MS && now - Date.parse(c.record.created_at) < this.ctx.config.signingKeyRotationSeconds * 1000) return c;
    // One catalog trip at a time per process, however many requests sign at once.
    this.#loading ??= this.#load().finally(() => {
      this.#loading = null;
    });
    return this.#loading;
  }

  async #load(): Promise<{ record: SigningKeyRecord; key: CryptoKey }> {
    const { config, catalog, secrets } = this.ctx;
    // A replaced key stays published for the longest a token of it can live, plus the skew verifiers allow.
    const keep = config.credentialTtlSeconds + config.tokenClockSkewSeconds;
    const record = await catalog.signingKeys.signingKey(config.signingKeyRotationSeconds, keep, () => newSigningKey(secrets));
    const key = this.#current?.record.kid === record.kid ? this.#current.key : ((await importJWK(JSON.parse(secrets.open(record.private_jwk)) as JWK, record.alg)) as CryptoKey);
    this.#current = { record, key, checkedAt: Date.now() };
    return this.#current;
  }
}

/** A new ES256 key pair: the kid is the public key's RFC 7638 thumbprint; the private half is sealed. */
async function newSigningKey(secrets: RoleContext['secrets']): Promise<NewSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: ALG, privateJwkSealed: secrets.seal(JSON.stringify(privateJwk)), publicJwk: publicJwk as Record<string, unknown> };
}
