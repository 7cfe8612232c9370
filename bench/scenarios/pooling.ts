import { PgBouncer, pgbouncerInstalled } from '../fixtures/pgbouncer.js';
import { PgwakeProcess } from '../fixtures/pgwake-process.js';
import type { Scenario } from '../scenario.js';
import { round, spread } from '../stats.js';
import { pgbench, pgbenchInit, type PgbenchTarget } from '../tools/pgbench.js';

const CLIENTS = 50;
const POOL_SIZE = 10;

/** What each run of pgbench -S does besides select-only: the protocol, and a new connection per transaction. */
const VARIANTS: { name: string; extra: string[] }[] = [
  { name: 'simple', extra: ['-S', '-M', 'simple'] },
  { name: 'extended', extra: ['-S', '-M', 'extended'] },
  { name: 'simple, -C', extra: ['-S', '-M', 'simple', '-C'] },
];

/**
 * Transaction pooling (issue 4): pgbench -S -c 50 over a pool of 10 server
 * connections, through pgwake and through PgBouncer (both in transaction mode,
 * same pool size, same compute), and directly against that compute with 50
 * backends. Systems alternate within each round; figures are ratios to direct
 * Postgres and to PgBouncer.
 */
export const poolingScenario: Scenario = {
  name: 'pooling',
  title: `Transaction pooling: pgbench -S -c ${CLIENTS} over a pool of ${POOL_SIZE}`,
  async run(ctx) {
    const rounds = ctx.quick ? 2 : 5;
    const seconds = ctx.quick ? 4 : 10;
    const pgwake = await PgwakeProcess.start();
    let bouncer: PgBouncer | undefined;
    const notes: string[] = [];
    try {
      const [db] = await pgwake.createDbs('pooling', 1, { suspend_timeout_seconds: 3600, pool_mode: 'transaction', pool_size: POOL_SIZE });
      const viaGateway = pgwake.gatewayTarget(db!);
      ctx.progress('pgbench -i');
      await pgbenchInit(viaGateway);
      const direct = await pgwake.directTarget(db!);
      const systems: [string, PgbenchTarget][] = [
        ['direct Postgres', direct],
        ['pgwake (transaction)', viaGateway],
      ];
      if (pgbouncerInstalled()) {
        bouncer = await PgBouncer.start(direct, { poolMode: 'transaction', poolSize: POOL_SIZE });
        systems.push(['PgBouncer (transaction)', bouncer.target(direct)]);
      } else {
        notes.push('PgBouncer is not installed (`apt-get install pgbouncer`): its column is left out.');
      }
      const tps = new Map<string, number[]>();
      const failed = new Map<string, number>();
      const key = (variant: string, system: string) => `${variant} | ${system}`;
      const total = rounds * VARIANTS.length * systems.length;
      let done = 0;
      for (let r = 0; r < rounds; r++) {
        for (const variant of VARIANTS) {
          // Rotate the order each round so no system always runs first (warm caches, drift).
          const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
          for (const [name, target] of order) {
            ctx.progress(`round ${r + 1}/${rounds}: ${variant.name}: ${name} (${++done}/${total})`);
            const result = await pgbench(target, { clients: CLIENTS, seconds, extra: variant.extra });
            const k = key(variant.name, name);
            tps.set(k, [...(tps.get(k) ?? []), result.tps]);
            failed.set(k, (failed.get(k) ?? 0) + result.failed);
          }
        }
      }
      const rows: (string | number)[][] = [];
      for (const variant of VARIANTS) {
        const base = spread(tps.get(key(variant.name, 'direct Postgres'))!).median;
        const bouncerTps = bouncer ? spread(tps.get(key(variant.name, 'PgBouncer (transaction)'))!).median : Number.NaN;
        for (const [name] of systems) {
          const s = spread(tps.get(key(variant.name, name))!);
          rows.push([variant.name, name, round(s.median, 0), round(s.min, 0), round(s.max, 0), round(s.median / base, 2), bouncer ? round(s.median / bouncerTps, 2) : '—', failed.get(key(variant.name, name))!]);
        }
      }
      return {
        tables: [
          {
            title: `pgbench -S -c ${CLIENTS} -j 2, ${seconds} s × ${rounds} rounds, pool of ${POOL_SIZE} (pgwake, PgBouncer): TPS`,
            columns: ['protocol', 'system', 'median', 'min', 'max', '× direct', '× PgBouncer', 'failed tx'],
            rows,
          },
        ],
        data: Object.fromEntries(tps),
        notes: [
          ...notes,
          `Direct Postgres serves the ${CLIENTS} clients with ${CLIENTS} backends; the poolers with ${POOL_SIZE}.`,
          'Goal (issue 4): pgwake in transaction mode at least PgBouncer\'s TPS in each row.',
        ],
      };
    } finally {
      await bouncer?.stop();
      await pgwake.stop();
    }
  },
};
