import type pg from 'pg';

/** What a stored response is: status, content type and the body as the caller sealed it. */
export interface StoredResponse {
  status: number;
  contentType: string | null;
  bodySealed: string | null;
}

/**
 * What `claim` found for an `(account, Idempotency-Key)`:
 * - `claimed`: nobody has it (or its record expired or was abandoned): run the request, then `finish`;
 * - `done`: the first request finished: answer with its response;
 * - `running`: the first request is still running;
 * - `mismatch`: the key was used for a different request.
 */
export type IdempotencyClaim = { kind: 'claimed' } | { kind: 'done'; response: StoredResponse } | { kind: 'running' } | { kind: 'mismatch' };

/**
 * Idempotency keys, scoped per account. The insert that claims a key is the
 * only one that can: concurrent retries find the row and wait or replay.
 */
export class IdempotencyStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Claims `key` for a request with `fingerprint`. A record past its expiry is
   * taken over; so is a `running` one past `locked_until` (its process died)
   * when the fingerprint matches.
   */
  async claim(accountId: string, key: string, fingerprint: Buffer, o: { lockMs: number; ttlMs: number }): Promise<IdempotencyClaim> {
    for (;;) {
      const claimed = await this.pool.query(
        `INSERT INTO idempotency_keys AS i (account_id, key, fingerprint, state, locked_until, expires_at)
         VALUES ($1, $2, $3, 'running', now() + make_interval(secs => $4::float8 / 1000), now() + make_interval(secs => $5::float8 / 1000))
         ON CONFLICT (account_id, key) DO UPDATE
            SET fingerprint = EXCLUDED.fingerprint, state = 'running', locked_until = EXCLUDED.locked_until, status = NULL,
                content_type = NULL, body_sealed = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
          WHERE i.expires_at <= now() OR (i.state = 'running' AND i.locked_until <= now() AND i.fingerprint = EXCLUDED.fingerprint)
         RETURNING 1`,
        [accountId, key, fingerprint, o.lockMs, o.ttlMs],
      );
      if (claimed.rowCount === 1) return { kind: 'claimed' };
      const { rows } = await this.pool.query<{ fingerprint: Buffer; state: 'running' | 'done'; status: number | null; content_type: string | null; body_sealed: string | null }>(
        'SELECT fingerprint, state, status, content_type, body_sealed FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND expires_at > now()',
        [accountId, key],
      );
      const row = rows[0];
      if (!row) continue; // expired or purged between the two statements: claim again
      if (!row.fingerprint.equals(fingerprint)) return { kind: 'mismatch' };
      if (row.state === 'running') return { kind: 'running' };
      return { kind: 'done', response: { status: row.status!, contentType: row.content_type, bodySealed: row.body_sealed } };
    }
  }

  /** Records the response of a claimed request; retries replay it until the record expires. */
  async finish(accountId: string, key: string, response: StoredResponse): Promise<void> {
    await this.pool.query(
      `UPDATE idempotency_keys SET state = 'done', status = $3, content_type = $4, body_sealed = $5 WHERE account_id = $1 AND key = $2 AND state = 'running'`,
      [accountId, key, response.status, response.contentType, response.bodySealed],
    );
  }

  /** Forgets a claim whose request produced no response to replay. */
  async release(accountId: string, key: string): Promise<void> {
    await this.pool.query(`DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND state = 'running'`, [accountId, key]);
  }

  /** Removes expired records; returns how many. */
  async purgeExpired(): Promise<number> {
    const { rowCount } = await this.pool.query('DELETE FROM idempotency_keys WHERE expires_at <= now()');
    return rowCount ?? 0;
  }
}
