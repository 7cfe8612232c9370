import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for the secrets the catalog must be able to give back (a tenant's
 * password for `GET …/credentials`). Format: base64url(iv | tag | ciphertext).
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(hexKey: string) {
    this.#key = Buffer.from(hexKey, 'hex');
    if (this.#key.length !== 32) throw new Error('secret key must be 32 bytes');
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  open(sealed: string): string {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /**
   * The password the gateway uses for `role` on a compute. Derived, never stored:
   * every gateway with the key computes the same one, and no client ever sees it.
   */
  internalRolePassword(role: string): string {
    return createHmac('sha256', this.#key).update(`compute-role:${role}`).digest('base64url');
  }

  /**
   * The password the gateway uses on a db's compute for one of the db's own roles
   * (`roles` rows). Roles are per db, so the db id is part of the key: role `app`
   * of one db and role `app` of another never share a password. A tenant's pg_user
   * (no `:` in it) cannot collide with `<db-id>:<role>`.
   */
  dbRolePassword(dbId: string, role: string): string {
    return this.internalRolePassword(`${dbId}:${role}`);
  }
}

/** The superuser every compute is created with; only the autoscaler and gateway hold its password. */
export const INTERNAL_SUPERUSER = 'pgwake_admin';
