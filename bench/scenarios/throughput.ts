import { cpus } from 'node:os';
import { runAlternating } from '../alternation.js';
import type { LineChart } from '../charts/index.js';
import { COMPARED_SYSTEMS, DIRECT, sharedComparedSystems, systemName, type ComparedSystem, type PoolMode } from '../fixtures/compared-systems.js';
import { findHaproxy, Haproxy } from '../fixtures/haproxy.js';
import { pgbouncerPreparesInTransactionMode } from '../fixtures/pgbouncer.js';
import type { HeadlineRatio, ReportTable, Scenario } from '../scenario.js';
import { cdfPoints, formatRatio, formatSpread, ratioSpread, spread } from '../stats.js';
import { describeRunLength, pgbench, type PgbenchRun, type RunLength } from '../tools/pgbench.js';

type Workload = 'select-only' | 'tpcb-like';
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

    // The reference relay, in front of the session-mode compute the same way (socket or TCP) as PgBouncer.
    const haproxy = findHaproxy();
    let relay: Haproxy | undefined;
    let relaySystem: ComparedSystem | undefined;
    if (!haproxy) {
      notes.push(`haproxy is not installed (\`apt-get install haproxy\`): the reference relay's rows are left out.`);
    } else {
      ctx.progress('starting haproxy');
      try {
        relay = await Haproxy.start(haproxy.binary, compared.sessionRoute.backend);
        const direct = compared.systems.find((s) => s.kind === 'direct')!.target;
        relaySystem = { name: RELAY, kind: 'relay', target: relay.target(direct) };
      } catch (err) {
        notes.push(`haproxy ${haproxy.version} did not start (${(err as Error).message.split('\n')[0]}): the reference relay's rows are left out.`);
      }
    }

    const results: { cell: Cell; runs: Map<string, PgbenchRun[]> }[] = [];
    const cellSystems = (cell: Cell) => [...applicable(cell), ...(relaySystem ? [relaySystem] : [])];
    const steps = cells.reduce((n, c) => n + cellSystems(c).length * rounds, 0);
    let done = 0;
    try {
      for (const cell of cells) {
        const systems = cellSystems(cell);
        const runs = await runAlternating(systems, rounds, (system, round) => {
          ctx.progress(`${cellLabel(cell)}: ${system.name}, round ${round + 1}/${rounds}`, done++ / steps);
          return pgbench(system.target, {
            clients: cell.clients,
            ...length(cell),
            extra: [...WORKLOAD_ARGS[cell.workload], '-M', cell.protocol],
            latencySampleRate: cell.clients === 20 ? SAMPLE_RATE[cell.workload] : undefined,
          });
        });
        results.push({ cell, runs });
      }
    } finally {
      await relay?.stop();
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
    let relayRatio: { median: number; cell: string } | undefined;
    if (relaySystem) {
      for (const { cell, runs } of results) {
        const direct = tps(runs, DIRECT)!;
        const own = tps(runs, RELAY)!;
        const bouncer = tps(runs, systemName('pgbouncer', 'session'));
        const ours = tps(runs, systemName('pgwake', 'session'));
        const over = (a: number[] | undefined, b: number[]) => (a ? formatRatio(ratioSpread(a, b)) : 'n/a');
        relayRows.push([
          cell.workload,
          cell.clients,
          cell.protocol,
          formatSpread(spread(direct)),
          formatSpread(spread(own)),
          over(own, direct),
          over(bouncer, direct),
          over(ours, direct),
          over(ours, own),
          runs.get(RELAY)!.reduce((n, r) => n + r.failed, 0),
        ]);
        if (QUICK_CELLS.some((q) => cellLabel(q) === cellLabel(cell))) {
          const ratio = ratioSpread(own, direct);
          ratios.push({ measure: `TPS, ${cellLabel(cell)}`, system: RELAY_FLOOR, baseline: DIRECT, ratio, better: 'higher' });
          if (cell.workload === 'select-only') relayRatio = { median: ratio.median, cell: cellLabel(cell) };
        }
      }
      notes.push(relayFloorNote(relayRatio?.median, cpus().length, relayRatio?.cell));
      notes.push(`haproxy ${haproxy!.version} reaches the session-mode compute as PgBouncer does, over ${compared.sessionRoute.transport === 'unix' ? 'its Unix socket' : 'TCP'}; it runs in every cell, alternating with the other systems within each round.`);
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
    const relayTable: ReportTable | undefined = relaySystem
      ? {
          title: `Session mode beside a pure byte relay, haproxy \`mode tcp\` (the reference floor): TPS median (min–max); ratios within a round`,
          columns: ['workload', '-c', '-M', DIRECT, RELAY, 'haproxy ÷ direct', 'PgBouncer (session) ÷ direct', 'pgwake (session) ÷ direct', 'pgwake (session) ÷ haproxy', 'failed tx (haproxy)'],
          rows: relayRows,
        }
      : undefined;
    return { tables: relayTable ? [table, relayTable] : [table], data, notes, charts, ratios };
  },
};

