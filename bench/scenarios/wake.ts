import type { LineChart } from '../charts/index.js';
import { PLAIN_PGWAKE, sharedPgwakeProcess, type BenchDb } from '../fixtures/pgwake-process.js';
import type { HeadlineRatio, Scenario } from '../scenario.js';
import { cdfPoints, percentile, ratioSpread, round } from '../stats.js';
import { connectToFirstRow, ScramKeyCache } from '../tools/bench-connection.js';
import type { PgbenchTarget } from '../tools/pgbench.js';

interface Attempt {
  ms: number;
  error?: string;
}

/** `count` clients connect at once; each one's connect-to-first-row, or its error. */
async function storm(targets: PgbenchTarget[], keys: ScramKeyCache): Promise<Attempt[]> {
  return Promise.all(
    targets.map((t) =>
      connectToFirstRow(t, keys).then(
        (ms) => ({ ms }),
        (err: Error) => ({ ms: Number.NaN, error: err.message }),
      ),
    ),
  );
}

const row = (label: string, s: number[], errors = 0) => [label, s.length, round(percentile(s, 50)), round(percentile(s, 90)), round(percentile(s, 99)), round(Math.max(...s)), errors];

/**
 * Connect-to-first-row through the gateway on a suspended db (the wake), against
 * the same on a running db and directly to the running compute, alternating within
 * each round; then storms: 100 clients on one suspended db, and one client on each
 * of 20 suspended dbs, at once.
 */
export const wakeScenario: Scenario = {
  name: 'wake',
  title: 'Wake: connect to first row on a suspended db',
  shares: [PLAIN_PGWAKE],
  async run(ctx) {
    const wakes = ctx.quick ? 10 : 60;
    const stormRounds = ctx.quick ? 2 : 5;
    const stormClients = 100;
    // Quick: 10 dbs, not 20: creating each (template copy, start, stop) takes ~0.35 s, however many at once.
    const dbCount = ctx.quick ? 10 : 20;
    const keys = new ScramKeyCache();
    ctx.progress('starting pgwake');
    // Scale-out's in-process wakes run on this pgwake too (one start-up); the bench stops it.
    const pgwake = await sharedPgwakeProcess();
    const login = await pgwake.createTenant('wake');
    // L2: a session-mode storm of 100 clients needs 100 server connections (L1 takes 100 with 3 kept for superusers).
    const db = await pgwake.createDb('wake', login, 'app', { size: 'L2' });
    ctx.progress(`creating ${dbCount} more dbs`);
    const many: BenchDb[] = [];
    for (let i = 0; i < dbCount; i += 5) {
      many.push(...(await Promise.all(Array.from({ length: Math.min(5, dbCount - i) }, (_, j) => pgwake.createDb('wake', login, `many-${i + j}`)))));
    }
    const target = pgwake.gatewayTarget(db);
    await connectToFirstRow(target, keys); // the first start also warms the OS page cache
    const steps = wakes + stormRounds * 2;

    const cold: number[] = [];
    const warm: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < wakes; i++) {
      ctx.progress(`wake ${i + 1}/${wakes}`, i / steps);
      await pgwake.suspend(db);
      cold.push(await connectToFirstRow(target, keys));
      const directTarget = await pgwake.directTarget(db);
      // Alternate which of the two warm measurements goes first.
      if (i % 2 === 0) {
        warm.push(await connectToFirstRow(target, keys));
        direct.push(await connectToFirstRow(directTarget, keys));
      } else {
        direct.push(await connectToFirstRow(directTarget, keys));
        warm.push(await connectToFirstRow(target, keys));
      }
    }

    // Each storm also runs against running computes, directly: the same burst of logins without a wake.
    const oneDb: Attempt[][] = [];
    const oneDbDirect: Attempt[][] = [];
    const manyDbs: Attempt[][] = [];
    const manyDbsDirect: Attempt[][] = [];
    for (let r = 0; r < stormRounds; r++) {
      ctx.progress(`storm ${r + 1}/${stormRounds}: ${stormClients} clients on 1 db`, (wakes + r * 2) / steps);
      await pgwake.suspend(db);
      oneDb.push(await storm(Array.from({ length: stormClients }, () => target), keys));
      const direct1 = await pgwake.directTarget(db);
      oneDbDirect.push(await storm(Array.from({ length: stormClients }, () => direct1), keys));
      ctx.progress(`storm ${r + 1}/${stormRounds}: 1 client on each of ${dbCount} dbs`, (wakes + r * 2 + 1) / steps);
      await Promise.all(many.map((d) => pgwake.suspend(d)));
      manyDbs.push(await storm(many.map((d) => pgwake.gatewayTarget(d)), keys));
      const directMany = await Promise.all(many.map((d) => pgwake.directTarget(d)));
      manyDbsDirect.push(await storm(directMany, keys));
    }
    // The pgwake is shared with the next scenario: leave it with no compute of ours running.
    await Promise.all([db, ...many].map((d) => pgwake.suspend(d)));
    const ok = (rounds: Attempt[][]) => rounds.flat().filter((a) => !a.error).map((a) => a.ms);
    const errors = (rounds: Attempt[][]) => rounds.flat().filter((a) => a.error);
    const firstErrors = [...errors(oneDb), ...errors(oneDbDirect), ...errors(manyDbs), ...errors(manyDbsDirect)].slice(0, 3).map((a) => a.error);

    const chart: LineChart = {
      id: 'connect-to-first-row',
      title: 'Connect to first row: CDF',
      xLabel: 'ms (log scale)',
      yLabel: 'fraction of connections',
      xScale: 'log',
      shape: 'step',
      series: [
        { name: 'direct, running', points: cdfPoints(direct) },
        { name: 'gateway, running', points: cdfPoints(warm) },
        { name: 'gateway, suspended', points: cdfPoints(cold) },
        { name: `storm: ${stormClients} on 1 db`, points: cdfPoints(ok(oneDb)) },
        { name: `storm: 1 on each of ${dbCount}`, points: cdfPoints(ok(manyDbs)) },
        { name: `same, direct, running`, points: cdfPoints(ok(manyDbsDirect)) },
        { name: `${stormClients} on 1, direct, running`, points: cdfPoints(ok(oneDbDirect)) },
      ],
    };
    const perRound = (rounds: Attempt[][], p: number) => rounds.map((r) => percentile(r.filter((a) => !a.error).map((a) => a.ms), p));
    const ratios: HeadlineRatio[] = [
      { measure: 'connect to first row, db suspended', system: 'gateway', baseline: 'gateway, db running', ratio: ratioSpread(cold, warm), better: 'lower' },
      { measure: 'connect to first row, db running', system: 'gateway', baseline: 'direct Postgres', ratio: ratioSpread(warm, direct), better: 'lower' },
      { measure: `wake storm, ${stormClients} clients on 1 db: p99`, system: 'gateway, db suspended', baseline: 'direct, running', ratio: ratioSpread(perRound(oneDb, 99), perRound(oneDbDirect, 99)), better: 'lower' },
      { measure: `wake storm, 1 client on each of ${dbCount} dbs: p99`, system: 'gateway, dbs suspended', baseline: 'direct, running', ratio: ratioSpread(perRound(manyDbs, 99), perRound(manyDbsDirect, 99)), better: 'lower' },
    ];
    return {
      tables: [
        {
          title: `Connect to first \`SELECT 1\`, ms (${wakes} wakes; the three alternate within each round)`,
          columns: ['what', 'n', 'p50', 'p90', 'p99', 'max', 'errors'],
          rows: [
            row('gateway, db suspended (a wake)', cold),
            row('gateway, db running', warm),
            row('direct to the running compute', direct),
            row('wake cost (suspended − running, per round)', cold.map((c, i) => c - warm[i]!)),
          ],
        },
        {
          title: `Wake storms, ms per client (${stormRounds} rounds)`,
          columns: ['storm', 'n', 'p50', 'p90', 'p99', 'max', 'errors'],
          rows: [
            row(`${stormClients} clients at once on 1 suspended db`, ok(oneDb), errors(oneDb).length),
            row(`the same, directly to the running compute`, ok(oneDbDirect), errors(oneDbDirect).length),
            row(`1 client on each of ${dbCount} suspended dbs at once`, ok(manyDbs), errors(manyDbs).length),
            row(`the same, directly to the ${dbCount} running computes`, ok(manyDbsDirect), errors(manyDbsDirect).length),
          ],
        },
      ],
      charts: [chart],
      data: { cold, warm, direct, stormOneDb: oneDb, stormOneDbDirect: oneDbDirect, stormManyDbs: manyDbs, stormManyDbsDirect: manyDbsDirect },
      notes: [
        'Clients here are the bench\'s lean wire client: SCRAM keys are derived once and cached (as a client-side pool does), so the figures are the gateway\'s and the compute\'s, not the client\'s PBKDF2.',
        `The storm db is size L2 (a session-mode storm of ${stormClients} needs as many server connections); the ${dbCount} dbs are L1.`,
        'Goal (issue 3): wake cost p50 ≤ 100 ms and p99 ≤ 250 ms.',
        ...(firstErrors.length ? [`First storm errors: ${firstErrors.join('; ')}`] : []),
      ],
      ratios,
    };
  },
};

