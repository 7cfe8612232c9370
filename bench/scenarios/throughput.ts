import { PgBouncer, pgbouncerInstalled } from '../fixtures/pgbouncer.js';
import { PgwakeProcess } from '../fixtures/pgwake-process.js';
import type { Scenario } from '../scenario.js';
import { round, spread } from '../stats.js';
import { pgbench, pgbenchInit, type PgbenchTarget } from '../tools/pgbench.js';

/**
 * pgbench -S -c 20 in session mode: direct to the compute, through pgwake, and
 * through PgBouncer, alternating system by system in each round so drift on a noisy
 * machine lands on all three alike.
 */
export const throughputScenario: Scenario = {
  name: 'throughput',
  title: 'Throughput: pgbench -S -c 20, session mode',
  async run(ctx) {
    const rounds = ctx.quick ? 3 : 5;
    const seconds = ctx.quick ? 4 : 10;
    const clients = 20;
    const pgwake = await PgwakeProcess.start();
    let bouncer: PgBouncer | undefined;
    const notes: string[] = [];
    try {
      const [db] = await pgwake.createDbs('tput', 1, { suspend_timeout_seconds: 3600 });
      const viaGateway = pgwake.gatewayTarget(db!);
      ctx.progress('pgbench -i');
      await pgbenchInit(viaGateway);
      const direct = await pgwake.directTarget(db!);
      const systems: [string, PgbenchTarget][] = [
        ['direct Postgres', direct],
        ['pgwake', viaGateway],
      ];
      if (pgbouncerInstalled()) {
        bouncer = await PgBouncer.start(direct, { poolMode: 'session', poolSize: clients });
        systems.push(['PgBouncer (session)', bouncer.target(direct)]);
      } else {
        notes.push('PgBouncer is not installed (`apt-get install pgbouncer`): its column is left out.');
      }
      const tps = new Map<string, number[]>(systems.map(([name]) => [name, []]));
      const failures = new Map<string, number>(systems.map(([name]) => [name, 0]));
      for (let r = 0; r < rounds; r++) {
        for (const [name, target] of systems) {
          ctx.progress(`round ${r + 1}/${rounds}: ${name}`);
          const result = await pgbench(target, { clients, seconds, extra: ['-S'] });
          tps.get(name)!.push(result.tps);
          failures.set(name, failures.get(name)! + result.failed);
        }
      }
      const base = spread(tps.get('direct Postgres')!).median;
      return {
        tables: [
          {
            title: `pgbench -S -c ${clients} -j 2, ${seconds} s × ${rounds} rounds: TPS`,
            columns: ['system', 'median', 'min', 'max', '× direct', 'failed tx'],
            rows: systems.map(([name]) => {
              const s = spread(tps.get(name)!);
              return [name, round(s.median, 0), round(s.min, 0), round(s.max, 0), round(s.median / base, 2), failures.get(name)!];
            }),
          },
        ],
        data: Object.fromEntries(tps),
        notes: [...notes, 'Goal (issue 3): pgwake session mode ≥ 0.9 × direct.'],
      };
    } finally {
      await bouncer?.stop();
      await pgwake.stop();
    }
  },
};
