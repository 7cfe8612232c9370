import { roundOrder } from '../alternation.js';
import { computeRoute, describeRoute } from '../fixtures/compute-socket.js';
import { NODE_RELAY, NodeRelay } from '../fixtures/node-relay.js';
import { PgBouncer, pgbouncerInstalled } from '../fixtures/pgbouncer.js';
import { COMPARED_SYSTEMS, DIRECT, sharedComparedSystems, systemName } from '../fixtures/compared-systems.js';
import type { HeadlineRatio, Scenario } from '../scenario.js';
import { formatRatio, ratioSpread, round, spread } from '../stats.js';
import { describeRunLength, pgbench, pgbenchInit, type PgbenchTarget, type RunLength } from '../tools/pgbench.js';
import { allCpus, pin, pinWithChildren, proxyOwnCore, SHARED_CPUS, type CpuLayout } from '../tools/cpu-layout.js';
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
/** With the proxy on a core of its own: the two protocols (with -C, connection set-up on the compute's core dominates). */
const OWN_CORE_VARIANTS = VARIANTS.filter((v) => v.name !== 'simple, -C');
const QUICK_TRANSACTIONS = 150;

/** Confines the compute (postmaster and backends) and the proxies as `layout` says; SHARED_CPUS frees them again. */
async function lay(layout: CpuLayout, computePid: number, proxyPids: number[]): Promise<void> {
  await pinWithChildren(computePid, layout.loadCpus ?? allCpus());
  for (const pid of proxyPids) await pin(pid, layout.proxyCpus ?? allCpus());
}

/**
 * Transaction pooling (issue 4): pgbench -S -c 50 over a pool of 10 server
 * connections, through pgwake and through PgBouncer (both in transaction mode,
 * same pool size, same compute), and directly against that compute with 50
 * backends. Systems alternate within each round; figures are ratios to direct
 * Postgres and to PgBouncer. Run twice over: with every process free to use
 * every core, and (where the machine has two or more) with the proxy on a core
 * of its own, as poolers are deployed (bench/tools/cpu-layout.ts).
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
      const layouts: { layout: CpuLayout; variants: typeof VARIANTS }[] = [{ layout: SHARED_CPUS, variants }];
      const ownCore = await proxyOwnCore();
      if (ownCore.layout) layouts.push({ layout: ownCore.layout, variants: ctx.quick ? QUICK_VARIANTS : OWN_CORE_VARIANTS });
      else notes.push(`The runs with the proxy on a core of its own are left out: ${ownCore.reason}.`);
      const computePid = await pgwake.computePid(db!);
      const tps = new Map<string, number[]>();
      const failed = new Map<string, number>();
      const cpuPerTx = new Map<string, { user: number[]; system: number[] }>();
      const key = (layout: CpuLayout, variant: string, system: string) => `${layout.name} | ${variant} | ${system}`;
      const total = rounds * systems.length * layouts.reduce((n, l) => n + l.variants.length, 0);
      let done = 0;
      /** One pgbench run through `name`, its TPS, failures and the proxy's CPU per transaction kept under `k`. */
      const measureRun = async (k: string, name: string, target: PgbenchTarget, extra: string[], cpus: string | undefined): Promise<void> => {
        const pid = proxyPid.get(name);
        const cpuBefore = pid ? await cpuTimeMs(pid) : undefined;
        const result = await pgbench(target, { clients: CLIENTS, ...length, extra, cpus });
        if (pid && cpuBefore && result.transactions > 0) {
          const cpuAfter = await cpuTimeMs(pid);
          const per = cpuPerTx.get(k) ?? { user: [], system: [] };
          per.user.push(((cpuAfter.user - cpuBefore.user) * 1000) / result.transactions);
          per.system.push(((cpuAfter.system - cpuBefore.system) * 1000) / result.transactions);
          cpuPerTx.set(k, per);
        }
        tps.set(k, [...(tps.get(k) ?? []), result.tps]);
        failed.set(k, (failed.get(k) ?? 0) + result.failed);
      };
      for (const { layout, variants: laidOut } of layouts) {
        const pinned = layout !== SHARED_CPUS;
        if (pinned) await lay(layout, computePid, [...proxyPid.values()]);
        try {
          for (let r = 0; r < rounds; r++) {
            for (const variant of laidOut) {
              for (const [name, target] of roundOrder(systems, r)) {
                ctx.progress(`${pinned ? 'proxy on its own core: ' : ''}round ${r + 1}/${rounds}: ${variant.name}: ${name} (${++done}/${total})`);
                await measureRun(key(layout, variant.name, name), name, target, variant.extra, layout.loadCpus);
              }
            }
          }
        } finally {
          if (pinned) await lay(SHARED_CPUS, computePid, [...proxyPid.values()]);
        }
      }
      const rows: (string | number)[][] = [];
      const cpuRows: (string | number)[][] = [];
      const ratios: HeadlineRatio[] = [];
      for (const { layout, variants: laidOut } of layouts) {
        const where = layout === SHARED_CPUS ? '' : ', proxy on a core of its own';
        for (const variant of laidOut) {
          const runs = (system: string) => tps.get(key(layout, variant.name, system))!;
          const measure = `TPS, pgbench -S -c ${CLIENTS} over a pool of ${POOL_SIZE}, ${variant.name}${where}`;
          ratios.push({ measure, system: POOLED, baseline: DIRECT, ratio: ratioSpread(runs(POOLED), runs(DIRECT)), better: 'higher' });
          if (bouncer) ratios.push({ measure, system: POOLED, baseline: BOUNCER, ratio: ratioSpread(runs(POOLED), runs(BOUNCER)), better: 'higher' });
          for (const [name] of systems) {
            const s = spread(runs(name));
            rows.push([layout.name, variant.name, name, round(s.median, 0), round(s.min, 0), round(s.max, 0), formatRatio(ratioSpread(runs(name), runs(DIRECT))), bouncer ? formatRatio(ratioSpread(runs(name), runs(BOUNCER))) : '—', failed.get(key(layout, variant.name, name))!]);
            const cpu = cpuPerTx.get(key(layout, variant.name, name));
            if (cpu) {
              const user = spread(cpu.user);
              cpuRows.push([layout.name, variant.name, name, round(user.median, 1), round(user.min, 1), round(user.max, 1), round(spread(cpu.system).median, 1)]);
            }
          }
        }
      }
      return {
        tables: [
          {
            title: `pgbench -S -c ${CLIENTS} -j 2 ${describeRunLength(length)} × ${rounds} rounds, pool of ${POOL_SIZE} (pgwake, PgBouncer): TPS`,
            columns: ['CPUs', 'protocol', 'system', 'median', 'min', 'max', '× direct (within a round)', '× PgBouncer (within a round)', 'failed tx'],
            rows,
          },
          {
            title: 'CPU of the proxy process per transaction, µs (from /proc/<pid>/stat around each run, 10 ms ticks; the 50 clients\' logins are in it, which weighs in short quick runs)',
            columns: ['CPUs', 'protocol', 'system', 'user, median', 'user, min', 'user, max', 'system, median'],
            rows: cpuRows,
          },
        ],
        data: { ...Object.fromEntries(tps), cpuMicrosecondsPerTransaction: Object.fromEntries(cpuPerTx) },
        notes: [
          ...notes,
          `Direct Postgres serves the ${CLIENTS} clients with ${CLIENTS} backends; the poolers with ${POOL_SIZE}.`,
          `Two layouts. "${SHARED_CPUS.name}": pgbench, the compute and the proxy compete for the same cores, so a proxy's CPU per transaction is taken from Postgres and pgbench and its TPS follows that cost. ` +
            'With the proxy on a core of its own (taskset; the compute\'s postmaster and backends and pgbench on the other), as poolers are deployed, TPS follows what the proxy does to the latency and the work of the compute\'s core instead. ' +
            'In that layout direct Postgres has one core, so its column there is a reference only.',
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
