import { roundOrder } from '../alternation.js';
import { computeRoute, describeRoute } from '../fixtures/compute-socket.js';
import { NODE_RELAY, NodeRelay } from '../fixtures/node-relay.js';
import { PgBouncer, pgbouncerInstalled } from '../fixtures/pgbouncer.js';
import { COMPARED_SYSTEMS, DIRECT, sharedComparedSystems, systemName } from '../fixtures/compared-systems.js';
import type { HeadlineRatio, Scenario } from '../scenario.js';
import { formatRatio, ratioSpread, round, spread } from '../stats.js';
import { describeRunLength, pgbench, pgbenchInit, type PgbenchTarget, type RunLength } from '../tools/pgbench.js';
import { cpuTimeMs } from '../tools/proc.js';

const CLIENTS = 50;
const POOL_SIZE = 10;
const POOLED = systemName('pgwake', 'transaction');
const BOUNCER = systemName('pgbouncer', 'transaction');
/** A reference, not a pooler: each client gets a server connection of its own. */
const RELAY = `${NODE_RELAY} (no pooling: ${CLIENTS} server connections)`;

/** What each run of pgbench -S does besides select-only: the protocol, and a new connection per transaction. */
const VARIANTS: { name: string; extra: string[] }[] = [
  { name: 'simple', extra: ['-S', '-M', 'simple'] },
  { name: 'extended', extra: ['-S', '-M', 'extended'] },
  { name: 'simple, -C', extra: ['-S', '-M', 'simple', '-C'] },
];
/** Quick: the simple protocol only (connection-rate measures -C), a fixed number of transactions per client. */
const QUICK_VARIANTS = VARIANTS.filter((v) => v.name === 'simple');
const QUICK_TRANSACTIONS = 150;

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
  shares: [COMPARED_SYSTEMS],
  async run(ctx) {
    const rounds = ctx.quick ? 3 : 5;
    const length: RunLength = ctx.quick ? { transactionsPerClient: QUICK_TRANSACTIONS } : { seconds: 10 };
    const variants = ctx.quick ? QUICK_VARIANTS : VARIANTS;
    // A db of its own on the pgwake throughput and connection-rate ran on (one start-up for the three).
    const { pgwake } = await sharedComparedSystems(ctx.progress);
    let bouncer: PgBouncer | undefined;
    let relay: NodeRelay | undefined;
    const notes: string[] = [];
    try {
      const [db] = await pgwake.createDbs('pooling', 1, { suspend_timeout_seconds: 3600, pool_mode: 'transaction', pool_size: POOL_SIZE });
      const viaGateway = pgwake.gatewayTarget(db!);
      ctx.progress('pgbench -i');
      await pgbenchInit(viaGateway);
      const direct = await pgwake.directTarget(db!);
      const systems: [string, PgbenchTarget][] = [
        [DIRECT, direct],
        [POOLED, viaGateway],
      ];
      /** The proxy's process, whose CPU per transaction is what the pooler costs (pgwake's holds every role). */
      const proxyPid = new Map<string, number>([[POOLED, pgwake.pid]]);
      const route = await computeRoute(pgwake, db!, direct);
      if (pgbouncerInstalled()) {
        bouncer = await PgBouncer.start(route.backend, { poolMode: 'transaction', poolSize: POOL_SIZE });
        systems.push([BOUNCER, bouncer.target(direct)]);
        proxyPid.set(BOUNCER, bouncer.pid);
        notes.push(`PgBouncer reaches the compute ${describeRoute(route)}.`);
      } else {
        notes.push('PgBouncer is not installed (`apt-get install pgbouncer`): its column is left out.');
      }
      try {
        relay = await NodeRelay.start(route.backend);
        systems.push([RELAY, relay.target(direct)]);
        proxyPid.set(RELAY, relay.pid);
        notes.push(
          `The ${NODE_RELAY} (as in throughput: bytes forwarded without parsing, reads into reused buffers) pools nothing: its ${CLIENTS} clients hold ${CLIENTS} server connections, as direct Postgres's do. ` +
            `It is there to set PgBouncer and pgwake beside what a relay in Node costs at the least; it reaches the compute ${route.transport === 'unix' ? 'over its Unix socket' : 'over TCP'}, as PgBouncer does.`,
        );
      } catch (err) {
        notes.push(`The ${NODE_RELAY} did not start (${(err as Error).message.split('\n')[0]}): its row is left out.`);
      }
      const tps = new Map<string, number[]>();
      const failed = new Map<string, number>();
      const cpuPerTx = new Map<string, { user: number[]; system: number[] }>();
      const key = (variant: string, system: string) => `${variant} | ${system}`;
      const total = rounds * variants.length * systems.length;
      let done = 0;
      for (let r = 0; r < rounds; r++) {
        for (const variant of variants) {
          for (const [name, target] of roundOrder(systems, r)) {
            ctx.progress(`round ${r + 1}/${rounds}: ${variant.name}: ${name} (${++done}/${total})`);
            const pid = proxyPid.get(name);
            const cpuBefore = pid ? await cpuTimeMs(pid) : undefined;
            const result = await pgbench(target, { clients: CLIENTS, ...length, extra: variant.extra });
            const k = key(variant.name, name);
            if (pid && cpuBefore && result.transactions > 0) {
              const cpuAfter = await cpuTimeMs(pid);
              const per = cpuPerTx.get(k) ?? { user: [], system: [] };
              per.user.push(((cpuAfter.user - cpuBefore.user) * 1000) / result.transactions);
              per.system.push(((cpuAfter.system - cpuBefore.system) * 1000) / result.transactions);
              cpuPerTx.set(k, per);
            }
            tps.set(k, [...(tps.get(k) ?? []), result.tps]);
            failed.set(k, (failed.get(k) ?? 0) + result.failed);
          }
        }
      }
      const rows: (string | number)[][] = [];
      const cpuRows: (string | number)[][] = [];
      const ratios: HeadlineRatio[] = [];
      for (const variant of variants) {
        const runs = (system: string) => tps.get(key(variant.name, system))!;
        const measure = `TPS, pgbench -S -c ${CLIENTS} over a pool of ${POOL_SIZE}, ${variant.name}`;
        ratios.push({ measure, system: POOLED, baseline: DIRECT, ratio: ratioSpread(runs(POOLED), runs(DIRECT)), better: 'higher' });
        if (bouncer) ratios.push({ measure, system: POOLED, baseline: BOUNCER, ratio: ratioSpread(runs(POOLED), runs(BOUNCER)), better: 'higher' });
        for (const [name] of systems) {
          const s = spread(runs(name));
          rows.push([variant.name, name, round(s.median, 0), round(s.min, 0), round(s.max, 0), formatRatio(ratioSpread(runs(name), runs(DIRECT))), bouncer ? formatRatio(ratioSpread(runs(name), runs(BOUNCER))) : '—', failed.get(key(variant.name, name))!]);
          const cpu = cpuPerTx.get(key(variant.name, name));
          if (cpu) {
            const user = spread(cpu.user);
            cpuRows.push([variant.name, name, round(user.median, 1), round(user.min, 1), round(user.max, 1), round(spread(cpu.system).median, 1)]);
          }
        }
      }
      return {
        tables: [
          {
            title: `pgbench -S -c ${CLIENTS} -j 2 ${describeRunLength(length)} × ${rounds} rounds, pool of ${POOL_SIZE} (pgwake, PgBouncer): TPS`,
            columns: ['protocol', 'system', 'median', 'min', 'max', '× direct (within a round)', '× PgBouncer (within a round)', 'failed tx'],
            rows,
          },
          {
            title: 'CPU of the proxy process per transaction, µs (from /proc/<pid>/stat around each run, 10 ms ticks; the 50 clients\' logins are in it, which weighs in short quick runs)',
            columns: ['protocol', 'system', 'user, median', 'user, min', 'user, max', 'system, median'],
            rows: cpuRows,
          },
        ],
        data: { ...Object.fromEntries(tps), cpuMicrosecondsPerTransaction: Object.fromEntries(cpuPerTx) },
        notes: [
          ...notes,
          `Direct Postgres serves the ${CLIENTS} clients with ${CLIENTS} backends; the poolers with ${POOL_SIZE}.`,
          'Goal (issue 4): pgwake in transaction mode at least PgBouncer\'s TPS in each row.',
          ...(ctx.quick ? [`Quick: the simple protocol only, ${QUICK_TRANSACTIONS} transactions per client; \`npm run bench -- pooling\` adds the extended protocol and -C, 10 s runs.`] : []),
        ],
        ratios,
      };
    } finally {
      await relay?.stop();
      await bouncer?.stop();
    }
  },
};
