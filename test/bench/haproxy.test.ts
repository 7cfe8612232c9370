import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy, Haproxy } from '../../bench/fixtures/haproxy.js';

/** A plain TCP echo server: what the relay must pass bytes to and from unchanged. */
let echo: net.Server;
let echoPort: number;
beforeAll(async () => {
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => echo.close(() => resolve())));

const target = () => ({ host: '127.0.0.1', port: echoPort, user: 'u', password: 'p', database: 'd' });

describe('haproxy, the bench\'s reference relay', () => {
  it('is reported absent, not thrown, when no candidate binary runs', () => {
    expect(findHaproxy(['/nonexistent/haproxy', 'pgwake-no-such-haproxy'])).toBeUndefined();
  });

  it('fails to start with the reason when the binary is missing, and leaves nothing running', async () => {
    await expect(Haproxy.start('/nonexistent/haproxy', target())).rejects.toThrow(/haproxy exited/);
  });

  it('finds haproxy exactly when it is installed', () => {
    const installed = spawnSync('/bin/sh', ['-c', 'command -v haproxy || test -x /usr/sbin/haproxy']).status === 0;
    expect(findHaproxy() !== undefined).toBe(installed);
  });

  // CI does not install haproxy (nor PgBouncer): there the bench leaves the relay out, and starting it must fail cleanly.
  it('relays bytes both ways to the server it fronts, and stops (where installed)', async () => {
    const found = findHaproxy();
    if (!found) return expect(Haproxy.start('haproxy', target())).rejects.toThrow(/haproxy exited/);
    const relay = await Haproxy.start(found!.binary, target());
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(relay.port, '127.0.0.1', () => s.write('ping through the relay'));
        s.once('data', (d) => (s.destroy(), resolve(d.toString())));
        s.once('error', reject);
      });
      expect(reply).toBe('ping through the relay');
      expect(relay.target(target()).port).toBe(relay.port);
    } finally {
      await relay.stop();
    }
    await expect(new Promise((resolve, reject) => net.connect(relay.port, '127.0.0.1', () => reject(new Error('still listening'))).once('error', resolve))).resolves.toBeDefined();
  });
});
