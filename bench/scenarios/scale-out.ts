import { runAlternating } from '../alternation.js';
import type { PoolMode } from '../fixtures/compared-systems.js';
import { PLAIN_PGWAKE, sharedPgwakeProcess, type BenchDb, type PgwakeApi, type PgwakeProcess } from '../fixtures/pgwake-process.js';
import { startPgwakeRoles, type PgwakeRoles } from '../fixtures/pgwake-roles.js';
import { RedisServer, redisServerVersion } from '../fixtures/redis-server.js';
import type { HeadlineRatio, ReportTable, Scenario } from '../scenario.js';
import { formatRatio, formatSpread, percentile, ratioSpread, round, spread } from '../stats.js';
import { connectToFirstRow, ScramKeyCache } from '../tools/bench-connection.js';
import { describeRunLength, pgbench, pgbenchInit, type PgbenchRun, type RunLength } from '../tools/pgbench.js';

export interface ScaleOutCell {
  clients: number;
  mode: PoolMode;
}

/** Quick: the cell where a gateway's CPU matters most (many clients, a checkout per transaction). */
export const QUICK_CELLS: ScaleOutCell[] = [{ clients: 50, mode: 'transaction' }];
const FULL_CELLS: ScaleOutCell[] = [20, 50].flatMap((clients) => (['session', 'transaction'] as const).map((mode) => ({ clients, mode })));

export const cellLabel = (c: ScaleOutCell) => `pgbench -S -c ${c.clients}, ${c.mode} mode`;
export const workersName = (n: number) => `${n} gateway worker${n === 1 ? '' : 's'}`;

export interface CellRuns {
  cell: ScaleOutCell;
  /** pgbench runs by system name (`workersName`), in round order. */
  runs: Map<string, PgbenchRun[]>;
}

/** TPS rows (1 worker, 2 workers, their per-round ratio) and the headline ratio of each cell. */
export function throughputRows(results: CellRuns[]): { rows: (string | number)[][]; ratios: HeadlineRatio[] } {
  const one = workersName(1);
  const two = workersName(2);
  const rows: (string | number)[][] = [];
  const ratios: HeadlineRatio[] = [];
  for (const { cell, runs } of results) {
    const tps = (name: string) => runs.get(name)!.map((r) => r.tps);
    const ratio = ratioSpread(tps(two), tps(one));
    const failed = [...runs.values()].flat().reduce((n, r) => n + r.failed, 0);
    rows.push([cell.clients, cell.mode, formatSpread(spread(tps(one))), formatSpread(spread(tps(two))), formatRatio(ratio), failed]);
    ratios.push({ measure: `TPS, ${cellLabel(cell)}`, system: two, baseline: one, ratio, better: 'higher' });
  }
  return { rows, ratios };
}

export const REDIS = 'Redis coordinator (roles apart)';
export const IN_PROCESS = 'in-process coordinator (pgwake start)';

/**
 * Wake latency rows per coordinator, and ratios Redis ÷ in-process: p50 as the
 * median of per-round ratios (the two alternate within a round), p99 over all wakes.
 */
export function wakeRows(redis: number[], inProcess: number[]): { rows: (string | number)[][]; ratios: HeadlineRatio[] } {
  const row = (name: string, s: number[]) => [name, s.length, round(percentile(s, 50)), round(percentile(s, 90)), round(percentile(s, 99)), round(Math.max(...s))];
  const measure = (p: string) => `wake (connect to first row, db suspended): ${p}`;
  return {
    rows: [row(REDIS, redis), row(IN_PROCESS, inProcess)],
    ratios: [
      { measure: measure('p50'), system: REDIS, baseline: IN_PROCESS, ratio: ratioSpread(redis, inProcess), better: 'lower' },
      { measure: measure(`p99 over ${redis.length} wakes`), system: REDIS, baseline: IN_PROCESS, ratio: ratioSpread([percentile(redis, 99)], [percentile(inProcess, 99)]), better: 'lower' },
    ],
  };
}

/** A db made through `api`, provisioned and loaded for pgbench. */
async function pgbenchDb(api: PgwakeApi, login: { pgUser: string; pgPassword: string }, mode: PoolMode, transactionPoolSize: number): Promise<BenchDb> {
  const db = await api.createDb('scale', login, `tput-${mode}`, { size: 'L2', suspend_timeout_seconds: 3600, pool_mode: mode, ...(mode === 'transaction' ? { pool_size: transactionPoolSize } : {}) });
  await api.untilState(db, ['suspended', 'running']);
  await pgbenchInit(api.gatewayTarget(db));
  return db;
}

/**
 * Scale-out (issue 7): pgwake with its roles apart (autoscaler, control API,
 * gateways) over Redis and a shared catalog. (a) pgbench -S through a gateway of
 * 1 worker and one of 2 workers (PGWAKE_GATEWAY_WORKERS), both up at once and
 * alternating round by round; (b) wakes through the Redis-coordinated gateway
 * against `pgwake start`'s in-process coordinator, alternating wake by wake.
 */
export const scaleOutScenario: Scenario = {
  name: 'scale-out',
  title: 'Scale-out: 1 vs 2 gateway workers, and wakes with the Redis vs the in-process coordinator',
  shares: [PLAIN_PGWAKE],
  async run(ctx) {
    const version = redisServerVersion();
    if (!version) {
      return {
        tables: [],
        data: { skipped: 'redis-server not installed' },
        notes: ['redis-server is not installed (`apt-get install redis-server`): the scale-out scenario is left out (roles apart coordinate through Redis).'],
      };
    }
    const rounds = 3;
    // Quick: a fixed number of transactions per client, about half a second at -c 50.
    const length: RunLength = ctx.quick ? { transactionsPerClient: 150 } : { seconds: 5 };
    const cells = ctx.quick ? QUICK_CELLS : FULL_CELLS;
    const wakes = ctx.quick ? 8 : 50;
    const transactionPoolSize = 20;
    const keys = new ScramKeyCache();

    ctx.progress('starting Redis, the catalog, the roles and pgwake start', 0);
    const redis = await RedisServer.start();
    let roles: PgwakeRoles | undefined;
    let single: PgwakeProcess | undefined;
    try {
      // Both stacks at once: start-up is mostly waiting (initdb, tsx), and the two do not share a port or a dir.
      const [r, s] = await Promise.allSettled([startPgwakeRoles({ redis, gatewayWorkers: [1, 2] }), sharedPgwakeProcess()]);
      if (r.status === 'fulfilled') roles = r.value;
      if (s.status === 'fulfilled') single = s.value;
      if (r.status === 'rejected') throw r.reason;
      if (s.status === 'rejected') throw s.reason;
      const stack = roles!;
      const api = stack.api;
      const login = await api.createTenant('scale');

      // (a) Throughput through 1 and 2 workers: the same dbs, the same pgbench, both gateways up.
      const dbs = new Map<PoolMode, BenchDb>();
      for (const mode of new Set(cells.map((c) => c.mode))) {
        ctx.progress(`creating and loading the ${mode}-mode db`, 0.05);
        dbs.set(mode, await pgbenchDb(api, login, mode, transactionPoolSize));
      }
      const systems = stack.gateways.map((g) => ({ name: workersName(g.workers), port: g.port }));
      const results: CellRuns[] = [];
      const steps = cells.length * rounds * systems.length + wakes;
      let done = 0;
      for (const cell of cells) {
        const target = api.gatewayTarget(dbs.get(cell.mode)!);
        const runs = await runAlternating(systems, rounds, (system, round) => {
          ctx.progress(`${cellLabel(cell)}: ${system.name}, round ${round + 1}/${rounds}`, done++ / steps);
          return pgbench({ ...target, port: system.port }, { clients: cell.clients, ...length, extra: ['-S'] });
        });
        results.push({ cell, runs });
      }

      // (b) Wakes: a suspended L1 db on each stack, the two alternating wake by wake.
      ctx.progress('creating the wake dbs', done / steps);
      const wakeDb = async (on: PgwakeApi, tenant: string, owner: { pgUser: string; pgPassword: string }) => {
        const db = await on.createDb(tenant, owner, 'wake', { size: 'L1', suspend_timeout_seconds: 3600 });
        await on.untilState(db, ['suspended', 'running']);
        await connectToFirstRow(on.gatewayTarget(db), keys); // the first start warms the OS page cache
        return db;
      };
      const local = single!;
      const coordinators = [
        { name: REDIS, api: api, db: await wakeDb(api, 'scale', login) },
        { name: IN_PROCESS, api: local as PgwakeApi, db: await wakeDb(local, 'scale-wake', await local.createTenant('scale-wake')) },
      ];
      const wakeRuns = await runAlternating(coordinators, wakes, async (c, i) => {
        ctx.progress(`wake ${i + 1}/${wakes}: ${c.name}`, done++ / steps);
        await c.api.suspend(c.db);
        return connectToFirstRow(c.api.gatewayTarget(c.db), keys);
      });

      const tput = throughputRows(results);
      const wake = wakeRows(wakeRuns.get(REDIS)!, wakeRuns.get(IN_PROCESS)!);
      const tables: ReportTable[] = [
        {
          title: `TPS through one gateway of 1 worker and one of 2 (PGWAKE_GATEWAY_WORKERS), pgbench -S -j 2 ${describeRunLength(length)} × ${rounds} rounds, median (min–max); ratio within a round`,
          columns: ['-c', 'pool mode', workersName(1), workersName(2), '2 workers ÷ 1', 'failed tx'],
          rows: tput.rows,
        },
        {
          title: `Wake: connect to first \`SELECT 1\` on a suspended db, ms (${wakes} wakes each, alternating)`,
          columns: ['coordinator', 'n', 'p50', 'p90', 'p99', 'max'],
          rows: wake.rows,
        },
      ];
      const notes = [
        `Roles apart: \`pgwake autoscaler\`, \`pgwake control-api\` and two \`pgwake gateway\` processes (PGWAKE_GATEWAY_WORKERS=1 and =2, each on its own port), sharing an embedded catalog Postgres, redis-server ${version} and one PGWAKE_SECRET_KEY; all on this machine (${cells.length > 1 ? 'dbs' : 'the db'} size L2).`,
        `In transaction mode each worker keeps its own pool (pool_size ${transactionPoolSize}): 2 workers may hold twice the server connections of 1.`,
        'Both gateways are up throughout; the idle one costs a little memory, no CPU. pgbench, the computes and the gateways share the machine\'s cores, so a second worker helps only as far as a core is free.',
        `Wakes: the Redis row goes through the 1-worker gateway (the wake request crosses Redis to the autoscaler process); the in-process row through \`pgwake start\` (the wake scenario's, when both run; its dbs suspended by then). Both dbs are L1; the bench's wire client caches SCRAM keys.`,
        ...(ctx.quick ? [`Quick: ${cells.map(cellLabel).join('; ')} only; \`npm run bench -- scale-out\` runs -c 20 and -c 50 in both pool modes and ${50} wakes each.`] : []),
      ];
      const data = {
        throughput: Object.fromEntries(results.map(({ cell, runs }) => [cellLabel(cell), Object.fromEntries(runs)])),
        wakesMs: Object.fromEntries(wakeRuns),
      };
      return { tables, data, notes, ratios: [...tput.ratios, ...wake.ratios] };
    } finally {
      // `single` is the bench's to stop (shared with the wake scenario).
      await roles?.stop();
      await redis.stop();
    }
  },
};
