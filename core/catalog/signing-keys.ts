import type pg from 'pg';
import { inTransaction } from './catalog.js';

/** A key that signs database credentials (DESIGN §2 `signing_keys`). */
export interface SigningKeyRecord {
  kid: string;
  alg: string;
  /** The private JWK, sealed with the secret key (SecretBox): never in clear at rest. */
  private_jwk: string;
  public_jwk: Record<string, unknown>;
  created_at: string;
  /** When it stopped signing; null for the key that signs now. */
  retired_at: string | null;
  /** Until when verifiers must still find it: the last token it signed expires then. */
  published_until: string | null;
}

export interface NewSigningKey {
  kid: string;
  alg: string;
  privateJwkSealed: string;
  publicJwk: Record<string, unknown>;
}

/** Any number, the same in every process: the rotation lock of the signing keys. */
const ROTATION_LOCK = 7304;

/**
 * Signing keys and their rotation. One key signs at a time; a key it replaces is
 * retired and stays published for as long as a token it signed can live, so
 * rotating never breaks a token already issued.
 */
export class SigningKeyStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * The key that signs now, made or replaced first when there is none or it is
   * older than `maxAgeSeconds`. Under a lock, so concurrent callers (many control
   * API processes) make one key between them. `retiredKeepsSeconds`: how long a
   * replaced key stays published (the longest a token lives, plus clock skew).
   */
  async signingKey(maxAgeSeconds: number, retiredKeepsSeconds: number, make: () => Promise<NewSigningKey>): Promise<SigningKeyRecord> {
    const fresh = await this.#active(this.pool, maxAgeSeconds);
    if (fresh) return fresh;
    const made = await make(); // outside the transaction: key generation is CPU work
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [ROTATION_LOCK]);
      const other = await this.#active(c, maxAgeSeconds);
      if (other) return other; // someone else rotated meanwhile
      await this.#retireActive(c, retiredKeepsSeconds);
      return this.#insert(c, made);
    });
  }

  /** Replaces the signing key now, whatever its age (an operator's rotation, or a key feared leaked: then `retiredKeepsSeconds` 0). */
  async rotate(retiredKeepsSeconds: number, made: NewSigningKey): Promise<SigningKeyRecord> {
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [ROTATION_LOCK]);
      await this.#retireActive(c, retiredKeepsSeconds);
      return this.#insert(c, made);
    });
  }

  /** Every key a verifier may need: the signing one and the retired ones whose tokens may still be alive. Newest first. */
  async published(): Promise<SigningKeyRecord[]> {
    const { rows } = await this.pool.query<SigningKeyRecord>(
      'SELECT * FROM signing_keys WHERE retired_at IS NULL OR published_until > now() ORDER BY created_at DESC, kid',
    );
    return rows;
  }

  async #active(q: pg.Pool | pg.PoolClient, maxAgeSeconds: number): Promise<SigningKeyRecord | null> {
    const { rows } = await q.query<SigningKeyRecord>(
      `SELECT * FROM signing_keys WHERE retired_at IS NULL AND created_at > now() - make_interval(secs => $1)`,
      [maxAgeSeconds],
    );
    return rows[0] ?? null;
  }

  async #retireActive(c: pg.PoolClient, keepSeconds: number): Promise<void> {
    await c.query(`UPDATE signing_keys SET retired_at = now(), published_until = now() + make_interval(secs => $1) WHERE retired_at IS NULL`, [keepSeconds]);
  }

  async #insert(c: pg.PoolClient, k: NewSigningKey): Promise<SigningKeyRecord> {
    const { rows } = await c.query<SigningKeyRecord>(
      'INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4) RETURNING *',
      [k.kid, k.alg, k.privateJwkSealed, JSON.stringify(k.publicJwk)],
    );
    return rows[0]!;
  }
}
