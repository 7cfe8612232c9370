// What the rate limits cost per request: the same requests against two control APIs on one
// catalog, limits on (never reached) and off, alternated so both see the same machine load.
// Run: npx tsx test/control-api/rate-limit-overhead.ts [requests-per-round]
import { startControlApi } from '../../control-api/index.js';
import { startTestStack } from '../support/stack.js';

const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = 8;
const ROUNDS = 4;

const stack = await startTestStack({}, ['control-api']);
try {
  const base = stack.ctx.config;
  const on = await startControlApi({ ...stack.ctx, config: { ...base, rateLimitPerKey: 1e9, rateLimitPerAddress: 1e9 } });
  const off = await startControlApi({ ...stack.ctx, config: { ...base, rateLimitPerKey: 0, rateLimitPerAddress: 0 } });
  const signUp = await (await fetch(`${on.url}/v2/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"bench"}' })).json();
  const auth = { authorization: `Bearer ${signUp.api_key}` };

  /** N requests, CONCURRENCY at a time; returns mean microseconds per request and the p50/p99 latency. */
  async function measure(url: string, headers: Record<string, string>) {
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < N) {
          const t = performance.now();
          const res = await fetch(url, { headers });
          await res.arrayBuffer();
          if (res.status === 429) throw new Error('a limit was reached: the measurement is void');
          latencies.push(performance.now() - t);
        }
      }),
    );
    const wall = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    return { rps: (N / wall) * 1000, p50: latencies[Math.floor(N * 0.5)]!, p99: latencies[Math.floor(N * 0.99)]! };
  }

  const cases = [
    { name: 'GET /v2/api-keys/me (key checked in the catalog)', path: '/v2/api-keys/me', headers: auth },
    { name: 'GET /v2/nothing (no route, no key: limiter and 404 only)', path: '/v2/nothing', headers: {} },
  ];
  console.log(`| request | limits | req/s | p50 ms | p99 ms |\n|---|---|---|---|---|`);
  for (const c of cases) {
    const results: Record<'on' | 'off', { rps: number; p50: number; p99: number }[]> = { on: [], off: [] };
    await measure(on.url + c.path, c.headers); // warm up both
    await measure(off.url + c.path, c.headers);
    for (let r = 0; r < ROUNDS; r++) {
      results.on.push(await measure(on.url + c.path, c.headers));
      results.off.push(await measure(off.url + c.path, c.headers));
    }
    for (const mode of ['off', 'on'] as const) {
      const med = (f: (x: { rps: number; p50: number; p99: number }) => number) => results[mode].map(f).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
      console.log(`| ${c.name} | ${mode} | ${med((x) => x.rps).toFixed(0)} | ${med((x) => x.p50).toFixed(3)} | ${med((x) => x.p99).toFixed(3)} |`);
    }
  }
  await on.stop();
  await off.stop();
} finally {
  await stack.destroy();
}
