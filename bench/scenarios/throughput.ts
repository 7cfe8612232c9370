import { cpus } from 'node:os';
import { runAlternating } from '../alternation.js';
import type { LineChart } from '../charts/index.js';
import { COMPARED_SYSTEMS, DIRECT, sharedComparedSystems, systemName, type ComparedSystem, type PoolMode } from '../fixtures/compared-systems.js';
import { findHaproxy, Haproxy } from '../fixtures/haproxy.js';
import { NODE_RELAY, NodeRelay } from '../fixtures/node-relay.js';
import { pgbouncerPreparesInTransactionMode } from '../fixtures/pgbouncer.js';
import type { HeadlineRatio, ReportTable, Scenario } from '../scenario.js';
import { cdfPoints, formatRatio, formatSpread, ratioSpread, spread } from '../stats.js';
import { describeRunLength, pgbench, type PgbenchRun, type RunLength } from '../tools/pgbench.js';
import { cpuTimeMs } from '../tools/proc.js';

type Workload = 'select-only' | 'tpcb-like';
/** A proxy's CPU per transaction over the rounds, µs. */
interface CpuPerTransaction {
  user: number[];
  system: number[];
}
type Protocol = 'simple' | 'extended' | 'prepared';

interface Cell {
  workload: Workload;
  clients: number;
  protocol: Protocol;
}

const WORKLOAD_ARGS: Record<Workload, string[]> = { 'select-only': ['-S'], 'tpcb-like': [] };
// Enough sampled transactions for a latency distribution without pgbench writing a log line for each.
const SAMPLE_RATE: Record<Workload, number> = { 'select-only': 0.02, 'tpcb-like': 0.2 };
/** Quick runs: transactions per client (pgbench -t), about half a second through pgwake at -c 20. */
const QUICK_TRANSACTIONS: Record<Workload, number> = { 'select-only': 300, 'tpcb-like': 25 };

/** Quick: two cells covering both workloads, both extremes of protocol, at 20 clients. */
const QUICK_CELLS: Cell[] = [
  { workload: 'select-only', clients: 20, protocol: 'simple' },
  { workload: 'tpcb-like', clients: 20, protocol: 'prepared' },
];

function fullCells(): Cell[] {
  const cells: Cell[] = [];
  for (const workload of ['select-only', 'tpcb-like'] as const)
    for (const clients of [1, 20, 100]) for (const protocol of ['simple', 'extended', 'prepared'] as const) cells.push({ workload, clients, protocol });
  return cells;
}

const cellLabel = (c: Cell) => `${c.workload} -c ${c.clients} -M ${c.protocol}`;

/** haproxy in mode tcp in front of the session-mode compute: what merely relaying bytes costs here. */
export const RELAY = 'haproxy (TCP relay)';
const RELAY_FLOOR = 'haproxy (TCP relay, reference floor)';
const NODE_RELAY_REFERENCE = `${NODE_RELAY} (reference)`;
/** The issue's goal for session mode: TPS at least this × direct Postgres. */
const SESSION_GOAL = 0.9;

/**
 * Why the relay's rows are there, from its measured ratio on `measuredOn`: a
 * ratio a C byte relay misses on this machine no proxy reaches here.
 */
export function relayFloorNote(ratio: number | undefined, cores: number, measuredOn = 'select-only -c 20 -M simple'): string {
  const what = `haproxy in \`mode tcp\` (C, one thread, bytes copied without parsing the protocol) is about the cheapest proxy there is: its rows show what the extra hop alone costs on this machine (a second process's copies, syscalls and wake-ups), a reference for every proxy's column`;
  if (ratio === undefined || !Number.isFinite(ratio)) return `${what}.`;
  const reaches = `it reaches ${ratio.toFixed(2)} × direct Postgres (${measuredOn}, median)`;
  return ratio < SESSION_GOAL
    ? `${what}. ${reaches[0]!.toUpperCase()}${reaches.slice(1)}, so the issue's goal "session-mode TPS ≥ ${SESSION_GOAL} × direct" asks more than even a C byte relay reaches on these ${cores} cores: the relay's own CPU competes with pgbench and Postgres for the same cores.`
    : `${what}; ${reaches}, at or above the issue's goal of ${SESSION_GOAL} × direct for session mode.`;
}

/** Medians from the measured cell, for the bare Node relay's note. */
export interface NodeRelayFigures {
  cell: string;
  relayOverDirect: number;
  bouncerOverRelay?: number;
  pgwakeOverRelay?: number;
}

/** What the bare Node relay's rows are for, with its figures when measured. */
export function nodeRelayNote(figures?: NodeRelayFigures): string {
  const what =
    'The bare Node relay is the least a relay written in Node can do: a `net` server forwarding bytes both ways without parsing them, both sides reading into reused buffers (`onread`) as pgwake\'s gateway does, in a Node process of its own reaching the compute as PgBouncer does. ' +
    'The gap between it and PgBouncer is what Node itself costs per forwarded message on this machine; the gap between pgwake and it is pgwake\'s own work (framing, pooling, prepared statements, activity).';
  if (!figures || !Number.isFinite(figures.relayOverDirect)) return what;
  const parts = [`it reaches ${figures.relayOverDirect.toFixed(2)} × direct Postgres`];
  if (figures.bouncerOverRelay !== undefined && Number.isFinite(figures.bouncerOverRelay)) parts.push(`PgBouncer (session) ${figures.bouncerOverRelay.toFixed(2)} × the relay`);
  if (figures.pgwakeOverRelay !== undefined && Number.isFinite(figures.pgwakeOverRelay)) parts.push(`pgwake (session) ${figures.pgwakeOverRelay.toFixed(2)} × the relay`);
  return `${what} Here (${figures.cell}, medians of within-round ratios) ${parts.join(', ')}.`;
}

/** A relay that parses nothing, in front of the session-mode compute: a reference, not a compared system. */
interface ReferenceRelay {
  system: ComparedSystem;
  /** Its name in column headers. */
  short: string;
  stop(): Promise<void>;
}

/**
 * pgbench through every system, cell by cell of the matrix (workload × clients ×
 * protocol), the systems alternating within each round; TPS as median, min, max,
 * and the ratios taken within a round.
 */
export const throughputScenario: Scenario = {
  name: 'throughput',
  title: 'Throughput: pgbench, pgwake vs direct Postgres vs PgBouncer',
  shares: [COMPARED_SYSTEMS],
  async run(ctx) {
    const rounds = 3;
    const length = (cell: Cell): RunLength => (ctx.quick ? { transactionsPerClient: QUICK_TRANSACTIONS[cell.workload] } : { seconds: 5 });
    const cells = ctx.quick ? QUICK_CELLS : fullCells();
    const compared = await sharedComparedSystems(ctx.progress);
    ctx.progress('pgbench -i');
    await compared.init(ctx.quick ? 1 : 10);
    const notes = [...compared.notes];
    const bouncerPrepares = pgbouncerPreparesInTransactionMode(compared.pgbouncerVersion);
    if (compared.pgbouncerVersion && !bouncerPrepares)
      notes.push(`PgBouncer ${compared.pgbouncerVersion} has no protocol-level prepared statements in transaction mode (1.21 added them): its -M prepared cells in that mode are left out.`);
    const applicable = (cell: Cell) => compared.systems.filter((s) => !(s.kind === 'pgbouncer' && s.mode === 'transaction' && cell.protocol === 'prepared' && !bouncerPrepares));

    // The reference relays, in front of the session-mode compute the same way (socket or TCP) as PgBouncer.
    const relays: ReferenceRelay[] = [];
    const directTarget = compared.systems.find((s) => s.kind === 'direct')!.target;
    const haproxy = findHaproxy();
    if (!haproxy) {
      notes.push(`haproxy is not installed (\`apt-get install haproxy\`): its reference rows are left out.`);
    } else {
      ctx.progress('starting haproxy');
      try {
        const relay = await Haproxy.start(haproxy.binary, compared.sessionRoute.backend);
        relays.push({ system: { name: RELAY, kind: 'relay', target: relay.target(directTarget), pid: relay.pid }, short: 'haproxy', stop: () => relay.stop() });
      } catch (err) {
        notes.push(`haproxy ${haproxy.version} did not start (${(err as Error).message.split('\n')[0]}): its reference rows are left out.`);
      }
    }
    ctx.progress('starting the bare Node relay');
    try {
      const relay = await NodeRelay.start(compared.sessionRoute.backend);
      relays.push({ system: { name: NODE_RELAY, kind: 'relay', target: relay.target(directTarget), pid: relay.pid }, short: NODE_RELAY, stop: () => relay.stop() });
    } catch (err) {
      notes.push(`The bare Node relay did not start (${(err as Error).message.split('\n')[0]}): its reference rows are left out.`);
    }

    const results: { cell: Cell; runs: Map<string, PgbenchRun[]>; cpu: Map<string, CpuPerTransaction> }[] = [];
    const cellSystems = (cell: Cell) => [...applicable(cell), ...relays.map((r) => r.system)];
    const steps = cells.reduce((n, c) => n + cellSystems(c).length * rounds, 0);
    let done = 0;
    try {
      for (const cell of cells) {
        const systems = cellSystems(cell);
        const cpu = new Map<string, CpuPerTransaction>();
        const runs = await runAlternating(systems, rounds, async (system, round) => {
          ctx.progress(`${cellLabel(cell)}: ${system.name}, round ${round + 1}/${rounds}`, done++ / steps);
          const before = system.pid ? await cpuTimeMs(system.pid) : undefined;
          const run = await pgbench(system.target, {
            clients: cell.clients,
            ...length(cell),
            extra: [...WORKLOAD_ARGS[cell.workload], '-M', cell.protocol],
            latencySampleRate: cell.clients === 20 ? SAMPLE_RATE[cell.workload] : undefined,
          });
          if (system.pid && before && run.transactions > 0) {
            const after = await cpuTimeMs(system.pid);
            const per = cpu.get(system.name) ?? { user: [], system: [] };
            per.user.push(((after.user - before.user) * 1000) / run.transactions);
            per.system.push(((after.system - before.system) * 1000) / run.transactions);
            cpu.set(system.name, per);
          }
          return run;
        });
        results.push({ cell, runs, cpu });
      }
    } finally {
      for (const r of relays) await r.stop();
    }

    const tps = (runs: Map<string, PgbenchRun[]>, name: string) => runs.get(name)?.map((r) => r.tps);
    const rows: (string | number)[][] = [];
    const ratios: HeadlineRatio[] = [];
    for (const { cell, runs } of results) {
      const direct = tps(runs, DIRECT)!;
      for (const mode of ['session', 'transaction'] as PoolMode[]) {
        const ours = tps(runs, systemName('pgwake', mode));
        const theirs = tps(runs, systemName('pgbouncer', mode));
        if (!ours && !theirs) continue;
        const failed = [...runs.entries()].filter(([n]) => n.endsWith(`(${mode})`)).reduce((n, [, rs]) => n + rs.reduce((m, r) => m + r.failed, 0), 0);
        rows.push([
          cell.workload,
          cell.clients,
          cell.protocol,
          mode,
          formatSpread(spread(direct)),
          ours ? formatSpread(spread(ours)) : 'n/a',
          theirs ? formatSpread(spread(theirs)) : 'n/a',
          ours ? formatRatio(ratioSpread(ours, direct)) : 'n/a',
          ours && theirs ? formatRatio(ratioSpread(ours, theirs)) : 'n/a',
          failed,
        ]);
        const measure = `TPS, ${cellLabel(cell)}`;
        // Headlines from the cells quick runs too, so a quick and a full report quote the same things.
        if (ours && QUICK_CELLS.some((q) => cellLabel(q) === cellLabel(cell))) {
          ratios.push({ measure, system: systemName('pgwake', mode), baseline: DIRECT, ratio: ratioSpread(ours, direct), better: 'higher' });
          if (theirs) ratios.push({ measure, system: systemName('pgwake', mode), baseline: systemName('pgbouncer', mode), ratio: ratioSpread(ours, theirs), better: 'higher' });
        }
      }
    }
    const relayRows: (string | number)[][] = [];
    const cpuRows: (string | number)[][] = [];
    let relayRatio: { median: number; cell: string } | undefined;
    let nodeFigures: NodeRelayFigures | undefined;
    const BOUNCER_SESSION = systemName('pgbouncer', 'session');
    const PGWAKE_SESSION = systemName('pgwake', 'session');
    const cpuSystems = [...relays.map((r) => r.system.name), BOUNCER_SESSION, PGWAKE_SESSION];
    if (relays.length > 0) {
      for (const { cell, runs, cpu } of results) {
        const direct = tps(runs, DIRECT)!;
        const bouncer = tps(runs, BOUNCER_SESSION);
        const ours = tps(runs, PGWAKE_SESSION);
        const over = (a: number[] | undefined, b: number[] | undefined) => (a && b ? formatRatio(ratioSpread(a, b)) : 'n/a');
        relayRows.push([
          cell.workload,
          cell.clients,
          cell.protocol,
          formatSpread(spread(direct)),
          ...relays.map((r) => formatSpread(spread(tps(runs, r.system.name)!))),
          ...relays.map((r) => over(tps(runs, r.system.name), direct)),
          over(bouncer, direct),
          over(ours, direct),
          ...relays.map((r) => over(ours, tps(runs, r.system.name))),
          relays.map((r) => runs.get(r.system.name)!.reduce((n, run) => n + run.failed, 0)).join(' / '),
        ]);
        cpuRows.push([
          cell.workload,
          cell.clients,
          cell.protocol,
          ...cpuSystems.map((name) => {
            const c = cpu.get(name);
            return c ? formatSpread(spread(c.user), 1) : 'n/a';
          }),
        ]);
        if (QUICK_CELLS.some((q) => cellLabel(q) === cellLabel(cell))) {
          const measure = `TPS, ${cellLabel(cell)}`;
          for (const r of relays) {
            const own = tps(runs, r.system.name)!;
            const ratio = ratioSpread(own, direct);
            const isNode = r.system.name === NODE_RELAY;
            ratios.push({ measure, system: isNode ? NODE_RELAY_REFERENCE : RELAY_FLOOR, baseline: DIRECT, ratio, better: 'higher' });
            if (isNode && ours) ratios.push({ measure, system: PGWAKE_SESSION, baseline: NODE_RELAY_REFERENCE, ratio: ratioSpread(ours, own), better: 'higher' });
            if (cell.workload !== 'select-only') continue;
            if (isNode)
              nodeFigures = {
                cell: cellLabel(cell),
                relayOverDirect: ratio.median,
                bouncerOverRelay: bouncer ? ratioSpread(bouncer, own).median : undefined,
                pgwakeOverRelay: ours ? ratioSpread(ours, own).median : undefined,
              };
            else relayRatio = { median: ratio.median, cell: cellLabel(cell) };
          }
        }
      }
      const via = compared.sessionRoute.transport === 'unix' ? 'its Unix socket' : 'TCP';
      if (relays.some((r) => r.system.name === RELAY)) {
        notes.push(relayFloorNote(relayRatio?.median, cpus().length, relayRatio?.cell));
        notes.push(`haproxy ${haproxy!.version} reaches the session-mode compute as PgBouncer does, over ${via}; it runs in every cell, alternating with the other systems within each round.`);
      }
      if (relays.some((r) => r.system.name === NODE_RELAY)) {
        notes.push(nodeRelayNote(nodeFigures));
        notes.push(`The bare Node relay (bench/fixtures/node-relay-process.mjs, Node ${process.version}) reaches the session-mode compute over ${via} too and runs in every cell.`);
      }
      notes.push(`Proxy CPU per transaction: user time of each proxy's process from /proc/<pid>/stat around each run (10 ms ticks, so coarse in quick runs; the clients' logins are in it); pgwake's process holds all its roles.`);
    }
    const table: ReportTable = {
      title: `TPS, pgbench -j 2 ${ctx.quick ? cells.map((c) => `${describeRunLength(length(c))} (${c.workload})`).join(', ') : describeRunLength(length(cells[0]!))} × ${rounds} rounds (median (min–max)); ratios within a round`,
      columns: ['workload', '-c', '-M', 'mode', DIRECT, 'pgwake', 'PgBouncer', 'pgwake ÷ direct', 'pgwake ÷ PgBouncer', 'failed tx'],
      rows,
    };
    const charts: LineChart[] = results
      .filter(({ cell }) => cell.clients === 20)
      .map(({ cell, runs }) => ({
        id: `latency-${cell.workload}-c${cell.clients}-${cell.protocol}`,
        title: `Transaction latency CDF, ${cellLabel(cell)}`,
        xLabel: 'latency, ms (log scale)',
        yLabel: 'fraction of transactions',
        xScale: 'log' as const,
        shape: 'step' as const,
        series: [...runs.entries()].map(([name, rs]) => ({ name, points: cdfPoints(rs.flatMap((r) => r.latenciesMs ?? [])) })),
      }));
    if (!ctx.quick) notes.push('tpcb-like runs at scale 10 (10 branches), so -c 100 contends on rows as an application would rather than on a single branch row.');
    else notes.push(`Quick: ${cells.map(cellLabel).join('; ')} only, runs of a fixed number of transactions per client (${cells.map((c) => `${c.workload} ${QUICK_TRANSACTIONS[c.workload]}`).join(', ')}) at scale 1; \`npm run bench -- throughput\` runs the whole matrix (select-only and tpcb-like × -c 1, 20, 100 × simple, extended, prepared).`);
    notes.push(`${DIRECT} is the session-mode db's compute, reached with the tenant role's internal credential over SCRAM; every system runs without TLS.`);
    const data = Object.fromEntries(results.map(({ cell, runs }) => [cellLabel(cell), Object.fromEntries([...runs.entries()].map(([n, rs]) => [n, rs.map(({ latenciesMs: _l, ...r }) => r)]))]));
    const relayTables: ReportTable[] =
      relays.length > 0
        ? [
            {
              title: `Session mode beside relays that parse nothing (reference): ${relays.map((r) => (r.system.name === RELAY ? 'haproxy `mode tcp` (C)' : 'a bare Node relay')).join(' and ')}; TPS median (min–max); ratios within a round`,
              columns: [
                'workload',
                '-c',
                '-M',
                DIRECT,
                ...relays.map((r) => r.system.name),
                ...relays.map((r) => `${r.short} ÷ direct`),
                'PgBouncer (session) ÷ direct',
                'pgwake (session) ÷ direct',
                ...relays.map((r) => `pgwake (session) ÷ ${r.short}`),
                `failed tx (${relays.map((r) => r.short).join(' / ')})`,
              ],
              rows: relayRows,
            },
            {
              title: 'User CPU of each proxy\'s process per transaction, µs: median (min–max) over the rounds',
              columns: ['workload', '-c', '-M', ...cpuSystems],
              rows: cpuRows,
            },
          ]
        : [];
    const cpuData = Object.fromEntries(results.map(({ cell, cpu }) => [cellLabel(cell), Object.fromEntries(cpu)]));
    return { tables: [table, ...relayTables], data: { ...data, cpuMicrosecondsPerTransaction: cpuData }, notes, charts, ratios };
  },
};

