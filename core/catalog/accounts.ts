import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { randomId } from '../ids.js';
import { inTransaction } from './catalog.js';

export interface Account {
  id: string;
  name: string;
  email: string | null;
  created_at: string;
}

export interface ApiKeyRecord {
  id: string;
  account_id: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

/** An API key as the caller sees it once: the secret and where it is recorded. */
export interface IssuedApiKey {
  key: string;
  record: ApiKeyRecord;
}

const KEY_PREFIX = 'pgw_';

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** Accounts and their API keys. Only a key's hash and a display prefix are stored. */
export class AccountStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(input: { name: string; email?: string | null }): Promise<{ account: Account; apiKey: IssuedApiKey }> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<Account>(
        'INSERT INTO accounts (id, name, email) VALUES ($1, $2, $3) RETURNING id, name, email, created_at',
        [randomId('acct'), input.name, input.email ?? null],
      );
      const account = rows[0]!;
      return { account, apiKey: await this.#issueKey(c, account.id) };
    });
  }

  async issueKey(accountId: string): Promise<IssuedApiKey> {
    return this.#issueKey(this.pool, accountId);
  }

  async #issueKey(q: pg.Pool | pg.PoolClient, accountId: string): Promise<IssuedApiKey> {
    const secret = randomBytes(24).toString('base64url');
    const key = `${KEY_PREFIX}${secret}`;
    const prefix = key.slice(0, KEY_PREFIX.length + 8);
    const { rows } = await q.query<ApiKeyRecord>(
      `INSERT INTO api_keys (id, account_id, prefix, key_hash) VALUES ($1, $2, $3, $4)
       RETURNING id, account_id, prefix, created_at, last_used_at, expires_at, revoked_at`,
      [randomId('key'), accountId, prefix, hashApiKey(key)],
    );
    return { key, record: rows[0]! };
  }

  /**
   * The account a key belongs to, or null. Looked up by the key's SHA-256: an
   * index lookup on a hash is not a timing oracle for the key itself.
   */
  async authenticate(key: string): Promise<{ account: Account; apiKey: ApiKeyRecord } | null> {
    if (!key.startsWith(KEY_PREFIX) || key.length > 200) return null;
    const { rows } = await this.pool.query<Account & { key_id: string; prefix: string; key_created_at: string; last_used_at: string | null; expires_at: string | null; revoked_at: string | null }>(
      `SELECT a.id, a.name, a.email, a.created_at, k.id AS key_id, k.prefix, k.created_at AS key_created_at, k.last_used_at, k.expires_at, k.revoked_at
         FROM api_keys k JOIN accounts a ON a.id = k.account_id
        WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND a.deleted_at IS NULL`,
      [hashApiKey(key)],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      account: { id: r.id, name: r.name, email: r.email, created_at: r.created_at },
      apiKey: { id: r.key_id, account_id: r.id, prefix: r.prefix, created_at: r.key_created_at, last_used_at: r.last_used_at, expires_at: r.expires_at, revoked_at: r.revoked_at },
    };
  }

  /** A live (not deleted) account. */
  async byId(id: string): Promise<Account | null> {
    const { rows } = await this.pool.query<Account>('SELECT id, name, email, created_at FROM accounts WHERE id = $1 AND deleted_at IS NULL', [id]);
    return rows[0] ?? null;
  }

  /** Changes the account's contact details; a field left undefined stays as it is. */
  async updateContact(id: string, contact: { name?: string; email?: string | null }): Promise<Account | null> {
    const { rows } = await this.pool.query<Account>(
      `UPDATE accounts SET name = CASE WHEN $2 THEN $3 ELSE name END, email = CASE WHEN $4 THEN $5 ELSE email END
        WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, email, created_at`,
      [id, contact.name !== undefined, contact.name ?? null, contact.email !== undefined, contact.email ?? null],
    );
    return rows[0] ?? null;
  }

  /**
   * Marks the account deleted and revokes every key of it in one transaction:
   * from its commit on, no key of the account authenticates. False if it was
   * deleted already. Its tenants and dbs are deleted afterwards, asynchronously.
   */
  async markDeleted(id: string): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query('UPDATE accounts SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL', [id]);
      if (rowCount === 0) return false;
      await c.query('UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL', [id]);
      return true;
    });
  }

  /** Deleted accounts that still have tenants: deletions a stopped process did not finish. */
  async deletedWithTenants(): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT a.id FROM accounts a WHERE a.deleted_at IS NOT NULL AND EXISTS (SELECT 1 FROM tenants t WHERE t.account_id = a.id) ORDER BY a.id');
    return rows.map((r) => r.id);
  }

  /** Records use in batches: a write per request would make the catalog the API's bottleneck. */
  async touchKeys(keyIds: string[]): Promise<void> {
    if (keyIds.length === 0) return;
    await this.pool.query('UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1)', [keyIds]);
  }
}
