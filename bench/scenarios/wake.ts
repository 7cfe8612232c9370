import pg from 'pg';
import { PgwakeProcess } from '../fixtures/pgwake-process.js';
import type { Scenario } from '../scenario.js';
import { percentile, round } from '../stats.js';

async function connectToFirstRow(target: pg.ClientConfig): Promise<number> {
  const t0 = performance.now();
  const client = new pg.Client(target);
  await client.connect();
  await client.query('SELECT 1');
  const elapsed = performance.now() - t0;
  await client.end();
  return elapsed;
}

const row = (label: string, s: number[]) => [label, s.length, round(percentile(s, 50)), round(percentile(s, 90)), round(percentile(s, 99))];

/** Connect-to-first-row on a suspended db (cold) against the same on a running one (warm). */
export const wakeScenario: Scenario = {
  name: 'wake',
  title: 'Wake latency: connect to first row',
  async run(ctx) {
    const rounds = ctx.quick ? 15 : 50;
    const pgwake = await PgwakeProcess.start();
    try {
      const [db] = await pgwake.createDbs('wake', 1);
      const target = { ...pgwake.gatewayTarget(db!), ssl: false };
      await connectToFirstRow(target); // the first start also warms the OS page cache
      const cold: number[] = [];
      const warm: number[] = [];
      for (let i = 0; i < rounds; i++) {
        ctx.progress(`wake ${i + 1}/${rounds}`);
        await pgwake.suspend(db!);
        cold.push(await connectToFirstRow(target));
        warm.push(await connectToFirstRow(target));
      }
      const overhead = cold.map((c, i) => c - warm[i]!);
      return {
        tables: [
          {
            title: `Connect to first \`SELECT 1\` through the gateway, ms (${rounds} rounds, alternating; the client's own SCRAM work is in both)`,
            columns: ['db was', 'n', 'p50', 'p90', 'p99'],
            rows: [row('suspended (cold)', cold), row('running (warm)', warm), row('wake cost (cold − warm)', overhead)],
          },
        ],
        data: { cold, warm, overhead },
        notes: ['Goal (issue 3): wake cost p50 ≤ 100 ms and p99 ≤ 250 ms beyond the client\'s SCRAM work.'],
      };
    } finally {
      await pgwake.stop();
    }
  },
};
