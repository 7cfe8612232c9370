import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantDb, pgClient, startGatewayStack, type TenantDb } from '../gateway/support.js';
import type { TestStack } from '../support/stack.js';

/**
 * A client that stops reading in the middle of a large result must not make the
 * gateway buffer the result: the gateway stops reading the compute instead
 * (TCP backpressure end to end). The gateway runs in this process, so its heap
 * and RSS are this process's.
 */
const RESULT_BYTES = 200 * 1024 * 1024;
const ROW_BYTES = 1_000;

let stack: TestStack;
let t: TenantDb;

beforeAll(async () => {
  stack = await startGatewayStack();
  t = await createTenantDb(stack);
}, 120_000);

afterAll(async () => {
  await stack?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('backpressure', () => {
  it('a client that reads nothing during a 200 MB result does not grow the gateway\'s memory; it gets the whole result once it reads', async () => {
    const client = pgClient(stack, t);
    await client.connect();
    await client.query('select 1'); // warm: the compute is up
    const stream = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
    const before = process.memoryUsage();
    const rows = Math.floor(RESULT_BYTES / ROW_BYTES);
    const result = client.query(`select count(*) over () as n, repeat('x', ${ROW_BYTES}) as pad from generate_series(1, ${rows})`);
    stream.pause(); // the client stops reading; the compute keeps producing
    let peakRss = 0;
    let peakHeap = 0;
    for (let i = 0; i < 20; i++) {
      await sleep(200);
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed + m.external + m.arrayBuffers);
    }
    const growth = { rss: peakRss - before.rss, buffers: peakHeap - (before.heapUsed + before.external + before.arrayBuffers) };
    console.log(`backpressure: while the client read nothing for 4 s, RSS grew ${(growth.rss / 1e6).toFixed(1)} MB, heap+buffers ${(growth.buffers / 1e6).toFixed(1)} MB (result ${RESULT_BYTES / 1e6} MB)`);
    // A gateway that buffered would hold a good part of the 200 MB by now; socket buffers and a few chunks are a few MB.
    expect(growth.buffers).toBeLessThan(40e6);
    expect(growth.rss).toBeLessThan(80e6);
    stream.resume();
    const r = await result;
    expect(r.rows.length).toBe(rows);
    expect(Number(r.rows[0].n)).toBe(rows);
    await client.end();
  }, 120_000);
});
