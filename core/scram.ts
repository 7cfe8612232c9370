import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * SCRAM-SHA-256 (RFC 5802/7677) key material, in Postgres's own verifier format
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, so a verifier made
 * here can be given to `ALTER ROLE … PASSWORD` as is.
 */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export const SCRAM_ITERATIONS = 4096;

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** SaltedPassword and the keys derived from it: what a client computes, expensively, once per salt. */
export interface ScramClientKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function deriveScramKeys(password: string, salt: Buffer, iterations: number): ScramClientKeys {
  // SASLprep is skipped: pgwake's own passwords are ASCII, and Postgres also uses the raw bytes when SASLprep fails.
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

export function createScramVerifier(password: string, iterations = SCRAM_ITERATIONS): ScramVerifier {
  const salt = randomBytes(16);
  const keys = deriveScramKeys(password, salt, iterations);
  return { iterations, salt, storedKey: keys.storedKey, serverKey: keys.serverKey };
}

export function formatScramVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

export function parseScramVerifier(text: string): ScramVerifier {
  const m = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) throw new Error('not a SCRAM-SHA-256 verifier');
  return {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2]!, 'base64'),
    storedKey: Buffer.from(m[3]!, 'base64'),
    serverKey: Buffer.from(m[4]!, 'base64'),
  };
}

export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
