import { pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { constantTimeEqual, hmac, sha256, xor, type ScramClientKeys } from '../../core/index.js';

const pbkdf2Async = promisify(pbkdf2);
const MAX_CACHED_KEYS = 10_000;

/**
 * SCRAM client keys per (role, salt, iterations). Deriving them costs a PBKDF2 of
 * thousands of rounds; a compute keeps its salt, so each new server connection
 * after the first pays only two HMACs. Concurrent misses share one derivation.
 */
export class ScramClientKeyCache {
  #keys = new Map<string, Promise<ScramClientKeys>>();

  get(role: string, password: string, salt: Buffer, iterations: number): Promise<ScramClientKeys> {
    const key = `${role}\0${salt.toString('base64')}\0${iterations}`;
    let keys = this.#keys.get(key);
    if (!keys) {
      keys = deriveKeys(password, salt, iterations);
      keys.catch(() => this.#keys.delete(key));
      if (this.#keys.size >= MAX_CACHED_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(key, keys);
    }
    return keys;
  }
}

/** core/scram.ts `deriveScramKeys`, off the event loop: the gateway must not stall every client for one login. */
async function deriveKeys(password: string, salt: Buffer, iterations: number): Promise<ScramClientKeys> {
  const salted = await pbkdf2Async(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** One SCRAM-SHA-256 login as a client (no channel binding: computes are reached over a local network without TLS). */
export class ScramClientSession {
  readonly clientNonce = randomBytes(18).toString('base64');
  readonly clientFirstBare = `n=*,r=${this.clientNonce}`;
  #expectedServerSignature: Buffer | undefined;

  clientFirst(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** Reads server-first (nonce, salt, iterations), so the caller can fetch keys for that salt. */
  parseServerFirst(serverFirst: string): { nonce: string; salt: Buffer; iterations: number } {
    const attrs = new Map(serverFirst.split(',').map((a) => [a.slice(0, 1), a.slice(2)] as const));
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) throw new Error('compute sent a malformed SCRAM server-first message');
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw new Error('compute sent a SCRAM nonce that does not extend ours');
    return { nonce, salt: Buffer.from(salt, 'base64'), iterations };
  }

  clientFinal(serverFirst: string, nonce: string, keys: ScramClientKeys): string {
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
    this.#expectedServerSignature = hmac(keys.serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** The compute proves it knows the verifier too: a server that cannot is not our compute. */
  verifyServerFinal(serverFinal: string): void {
    const m = /(?:^|,)v=([A-Za-z0-9+/=]+)/.exec(serverFinal);
    if (!m || !this.#expectedServerSignature || !constantTimeEqual(Buffer.from(m[1]!, 'base64'), this.#expectedServerSignature)) {
      throw new Error('compute sent a wrong SCRAM server signature');
    }
  }
}
