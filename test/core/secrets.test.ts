import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createScramVerifier, deriveScramKeys, formatScramVerifier, parseScramVerifier, SecretBox } from '../../core/index.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32).toString('hex'));

  it('opens what it sealed, and sealing twice differs', () => {
    const a = box.seal('s3cret');
    expect(box.open(a)).toBe('s3cret');
    expect(box.seal('s3cret')).not.toBe(a);
  });

  it('refuses a tampered or foreign secret', () => {
    const sealed = Buffer.from(box.seal('s3cret'), 'base64url');
    sealed[sealed.length - 1]! ^= 1;
    expect(() => box.open(sealed.toString('base64url'))).toThrow();
    expect(() => new SecretBox(randomBytes(32).toString('hex')).open(box.seal('x'))).toThrow();
  });

  it('derives the same internal role password for the same key and role only', () => {
    expect(box.internalRolePassword('alice')).toBe(box.internalRolePassword('alice'));
    expect(box.internalRolePassword('alice')).not.toBe(box.internalRolePassword('bob'));
  });
});

describe('SCRAM verifier', () => {
  it('round-trips Postgres\'s verifier format and matches the keys a client derives', () => {
    const v = createScramVerifier('pencil');
    const parsed = parseScramVerifier(formatScramVerifier(v));
    expect(parsed.iterations).toBe(4096);
    const keys = deriveScramKeys('pencil', parsed.salt, parsed.iterations);
    expect(keys.storedKey.equals(parsed.storedKey)).toBe(true);
    expect(keys.serverKey.equals(parsed.serverKey)).toBe(true);
    expect(deriveScramKeys('pen', parsed.salt, parsed.iterations).storedKey.equals(parsed.storedKey)).toBe(false);
  });

  it('refuses text that is not a verifier', () => {
    expect(() => parseScramVerifier('md5abc')).toThrow(/not a SCRAM/);
  });
});
