import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runAlternating } from '../alternation.js';
import { COMPARED_SYSTEMS, DIRECT, sharedComparedSystems } from '../fixtures/compared-systems.js';
import type { HeadlineRatio, Scenario } from '../scenario.js';
import { formatRatio, formatSpread, ratioSpread, spread } from '../stats.js';
import { describeRunLength, pgbench, type PgbenchRun, type RunLength } from '../tools/pgbench.js';

/**
 * pgbench -C: a new connection, SCRAM login included, for every transaction (a
 * `SELECT 1`), as a serverless function or a PHP request makes them. The rate is
 * connections (= transactions) per second.
 */
export const connectionRateScenario: Scenario = {
  name: 'connection-rate',
  title: 'Connection rate: pgbench -C (a new SCRAM login per transaction)',
  shares: [COMPARED_SYSTEMS],
  async run(ctx) {
    const rounds = 3;
    // Quick: 12 logins per client (~100 per run, what -T 1 gives the slowest system) rather than rounding every run up to 1 s.
    const length: RunLength = ctx.quick ? { transactionsPerClient: 12 } : { seconds: 5 };
    const clients = 8;
    // The throughput scenario's systems when it ran just before: the pool sizes exceed the 8 clients either way.
    const compared = await sharedComparedSystems(ctx.progress);
    let scriptDir: string | undefined;
    try {
      // A script of one `SELECT 1`: no tables to set up, and the figure is the login, not the query.
      scriptDir = await mkdtemp(path.join(tmpdir(), 'pgwake-bench-connrate-'));
      const script = path.join(scriptDir, 'select-one.sql');
      await writeFile(script, 'SELECT 1;\n');
      const systems = compared.systems;
      let done = 0;
      const runs = await runAlternating(systems, rounds, (system, round) => {
        ctx.progress(`${system.name}, round ${round + 1}/${rounds}`, done++ / (systems.length * rounds));
        return pgbench(system.target, { clients, ...length, threads: clients, extra: ['-C', '-f', script] });
      });
      const tps = (name: string) => runs.get(name)!.map((r: PgbenchRun) => r.tps);
      const direct = tps(DIRECT);
      const rows = systems.map((s) => {
        const own = tps(s.name);
        const connectMs = spread(runs.get(s.name)!.map((r) => r.connectionMs ?? Number.NaN));
        const bouncer = s.kind === 'pgwake' && runs.has(`PgBouncer (${s.mode})`) ? ratioSpread(own, tps(`PgBouncer (${s.mode})`)) : undefined;
        return [s.name, formatSpread(spread(own)), formatSpread(connectMs, 2), s.kind === 'direct' ? '1' : formatRatio(ratioSpread(own, direct)), bouncer ? formatRatio(bouncer) : '', runs.get(s.name)!.reduce((n, r) => n + r.failed, 0)];
      });
      const ratios: HeadlineRatio[] = [];
      for (const s of systems.filter((x) => x.kind === 'pgwake')) {
        const measure = `new connections/s, pgbench -C -c ${clients}`;
        ratios.push({ measure, system: s.name, baseline: DIRECT, ratio: ratioSpread(tps(s.name), direct), better: 'higher' });
        const bouncerName = `PgBouncer (${s.mode})`;
        if (runs.has(bouncerName)) ratios.push({ measure, system: s.name, baseline: bouncerName, ratio: ratioSpread(tps(s.name), tps(bouncerName)), better: 'higher' });
      }
      return {
        tables: [
          {
            title: `pgbench -C -c ${clients} -j ${clients} ${describeRunLength(length)} × ${rounds} rounds: connections (= transactions) per second, median (min–max)`,
            columns: ['system', 'connections/s', 'average connection time, ms', '÷ direct', '÷ PgBouncer, same mode', 'failed tx'],
            rows,
          },
        ],
        data: Object.fromEntries(runs),
        notes: [
          ...compared.notes,
          'Every login is SCRAM-SHA-256 from pgbench (libpq): the client\'s PBKDF2 is in every figure alike. PgBouncer keeps its server connections between clients; direct Postgres forks a backend per connection.',
        ],
        ratios,
      };
    } finally {
      if (scriptDir) await rm(scriptDir, { recursive: true, force: true });
    }
  },
};
