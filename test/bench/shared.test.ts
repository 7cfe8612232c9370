import { describe, expect, it } from 'vitest';
import { releaseShared, shared } from '../../bench/fixtures/shared.js';

/** A stand-in server set that counts its starts and stops. */
function counter() {
  const c = { starts: 0, stops: 0, start: async () => (c.starts++, { stop: async () => void c.stops++ }) };
  return c;
}

describe('servers shared by neighbouring scenarios', () => {
  it('starts once for every scenario that asks, and stops once the next scenario does not share it', async () => {
    const a = counter();
    const b = counter();
    const first = await shared('a', a.start);
    expect(await shared('a', a.start)).toBe(first);
    await shared('b', b.start);
    await releaseShared(['a']); // the next scenario shares 'a' only
    expect([a.starts, a.stops, b.starts, b.stops]).toEqual([1, 0, 1, 1]);
    await releaseShared(); // the run ends
    expect([a.starts, a.stops]).toEqual([1, 1]);
    await shared('a', a.start); // a later scenario starts it again
    expect(a.starts).toBe(2);
    await releaseShared();
  });

  it('does not keep a start that failed', async () => {
    await expect(shared('broken', () => Promise.reject(new Error('port taken')))).rejects.toThrow('port taken');
    const c = counter();
    await shared('broken', c.start);
    expect(c.starts).toBe(1);
    await releaseShared();
  });
});
