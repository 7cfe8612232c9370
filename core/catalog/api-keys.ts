import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { randomId } from '../ids.js';
import type { Account } from './accounts.js';
import { inTransaction, type Queryable } from './catalog.js';

/** An API key as stored: never the key itself, only its hash (not selected) and a display prefix. */
export interface ApiKey {
  id: string;
  account_id: string;
  name: string | null;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  /** Set by rotation to the end of the grace period; null: no expiry. */
  expires_at: string | null;
  revoked_at: string | null;
  /** The key that succeeded this one when it was rotated. */
  replaced_by: string | null;
}

/** A new key: the secret (shown once) and its record. */
export interface NewApiKey {
  key: string;
  record: ApiKey;
}

export type RotateResult = { kind: 'rotated'; issued: NewApiKey; previous: ApiKey } | { kind: 'already_rotated'; previous: ApiKey } | { kind: 'gone' };
export type RevokeResult = { kind: 'revoked'; key: ApiKey } | { kind: 'not_found' } | { kind: 'last_key' };

// Same format as the keys AccountStore issues at sign-up: `pgw_` + 32 base64url characters.
const KEY_PREFIX = 'pgw_';
const KEY_PATTERN = /^pgw_[A-Za-z0-9_-]{32}$/;
const PREFIX_LENGTH = KEY_PREFIX.length + 8;
const KEY_COLUMNS = 'k.id, k.account_id, k.name, k.prefix, k.created_at, k.last_used_at, k.expires_at, k.revoked_at, k.replaced_by';
/** A key that authenticates: not revoked, not past its expiry, of an account not deleted. */
const WORKS = 'k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())';

const sha256 = (key: string) => createHash('sha256').update(key).digest();

/**
 * API keys beyond sign-up: more keys per account, rotation with a grace period,
 * revocation, and authentication that compares hashes in constant time.
 */
export class ApiKeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async issue(accountId: string, name: string | null): Promise<NewApiKey> {
    return this.#issue(this.pool, accountId, name);
  }

  async #issue(q: Queryable, accountId: string, name: string | null): Promise<NewApiKey> {
    const key = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
    const { rows } = await q.query<ApiKey>(
      `INSERT INTO api_keys AS k (id, account_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5) RETURNING ${KEY_COLUMNS}`,
      [randomId('key'), accountId, name, key.slice(0, PREFIX_LENGTH), sha256(key)],
    );
    return { key, record: rows[0]! };
  }

  /**
   * The account and key a presented key belongs to, or null. Candidates are
   * found by the key's public prefix; the secret part is checked by comparing
   * SHA-256 digests with `timingSafeEqual`, so the time taken says nothing
   * about how much of a guess was right.
   */
  async authenticate(presented: string): Promise<{ account: Account; apiKey: ApiKey } | null> {
    if (!KEY_PATTERN.test(presented)) return null;
    const digest = sha256(presented);
    const { rows } = await this.pool.query<ApiKey & { key_hash: Buffer; account_name: string; email: string | null; account_created_at: string }>(
      `SELECT ${KEY_COLUMNS}, k.key_hash, a.name AS account_name, a.email, a.created_at AS account_created_at
         FROM api_keys k JOIN accounts a ON a.id = k.account_id
        WHERE k.prefix = $1 AND ${WORKS} AND a.deleted_at IS NULL`,
      [presented.slice(0, PREFIX_LENGTH)],
    );
    let found: (typeof rows)[number] | undefined;
    for (const row of rows) if (timingSafeEqual(row.key_hash, digest)) found = row;
    if (!found) return null;
    const { key_hash: _h, account_name, email, account_created_at, ...apiKey } = found;
    return { account: { id: apiKey.account_id, name: account_name, email, created_at: account_created_at }, apiKey };
  }

  async byId(accountId: string, id: string): Promise<ApiKey | null> {
    const { rows } = await this.pool.query<ApiKey>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.account_id = $1 AND k.id = $2`, [accountId, id]);
    return rows[0] ?? null;
  }

  /** The account's keys that still authenticate (those in a rotation's grace period included), oldest first. */
  async listWorking(accountId: string): Promise<ApiKey[]> {
    const { rows } = await this.pool.query<ApiKey>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.account_id = $1 AND ${WORKS} ORDER BY k.created_at, k.id`, [accountId]);
    return rows;
  }

  /**
   * Issues a successor for `keyId` and lets the old key work for `graceSeconds`
   * more (never longer than it would have anyway). A key is rotated once: a
   * second rotation of it, concurrent or later, is `already_rotated`.
   */
  async rotate(accountId: string, keyId: string, graceSeconds: number): Promise<RotateResult> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<ApiKey>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.account_id = $1 AND k.id = $2 AND ${WORKS} FOR UPDATE`, [accountId, keyId]);
      const old = rows[0];
      if (!old) return { kind: 'gone' };
      if (old.replaced_by) return { kind: 'already_rotated', previous: old };
      const issued = await this.#issue(c, accountId, old.name);
      const updated = await c.query<ApiKey>(
        `UPDATE api_keys k SET replaced_by = $2, expires_at = LEAST(COALESCE(k.expires_at, 'infinity'), now() + make_interval(secs => $3))
          WHERE k.id = $1 RETURNING ${KEY_COLUMNS}`,
        [keyId, issued.record.id, graceSeconds],
      );
      return { kind: 'rotated', issued, previous: updated.rows[0]! };
    });
  }

  /**
   * Revokes a key of the account at once. Refused when it would leave the
   * account without a key that lasts (one not already rotated away): nobody
   * could then sign in to make another. The account row is locked so two
   * revocations at once cannot each count on the other's key.
   */
  async revoke(accountId: string, keyId: string): Promise<RevokeResult> {
    return inTransaction(this.pool, async (c) => {
      const locked = await c.query('SELECT 1 FROM accounts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [accountId]);
      if (locked.rowCount === 0) return { kind: 'not_found' };
      const { rows } = await c.query<ApiKey>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.account_id = $1 AND k.id = $2`, [accountId, keyId]);
      const key = rows[0];
      if (!key) return { kind: 'not_found' };
      if (key.revoked_at) return { kind: 'revoked', key };
      const others = await c.query(`SELECT 1 FROM api_keys k WHERE k.account_id = $1 AND k.id <> $2 AND ${WORKS} AND k.replaced_by IS NULL LIMIT 1`, [accountId, keyId]);
      if (others.rowCount === 0 && key.replaced_by === null) return { kind: 'last_key' };
      const revoked = await c.query<ApiKey>(`UPDATE api_keys k SET revoked_at = now() WHERE k.id = $1 RETURNING ${KEY_COLUMNS}`, [keyId]);
      return { kind: 'revoked', key: revoked.rows[0]! };
    });
  }
}
