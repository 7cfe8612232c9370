import { computeRoute, describeRoute } from '../fixtures/compute-socket.js';
import { PgBouncer, pgbouncerVersion } from '../fixtures/pgbouncer.js';
import { PgwakeProcess } from '../fixtures/pgwake-process.js';
import { probeTransactionMode } from '../fixtures/pool-mode.js';
import type { HeadlineRatio, ReportTable, Scenario } from '../scenario.js';
import { median, percentile, ratioSpread, round } from '../stats.js';
import { BenchConnection, connectToFirstRow, ScramKeyCache } from '../tools/bench-connection.js';
import type { PgbenchTarget } from '../tools/pgbench.js';
import { openFilesLimit, rssBytes } from '../tools/proc.js';

interface Held {
  system: string;
  clients: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerClient: number;
  openPerSecond: number;
  /** First query on an already-open idle client (in transaction mode: a checkout), ms. */
  idleQueryMs: number[];
  /** A new client's connect-to-first-row while the others sit idle, ms. */
  newClientMs: number[];
  errors: number;
}

const OPEN_BATCH = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS settles a little after a burst (allocator, GC): the median of a few reads. */
async function settledRss(pid: number): Promise<number> {
  const reads: number[] = [];
  for (let i = 0; i < 3; i++) {
    await sleep(300);
    reads.push(await rssBytes(pid));
  }
  return median(reads);
}

async function openMany(target: PgbenchTarget, count: number, keys: ScramKeyCache, into: BenchConnection[], progress: (n: number) => void): Promise<number> {
  let errors = 0;
  for (let i = 0; i < count; i += OPEN_BATCH) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(OPEN_BATCH, count - i) }, () => BenchConnection.open(target, keys)));
    for (const b of batch) b.status === 'fulfilled' ? into.push(b.value) : errors++;
    progress(into.length);
  }
  return errors;
}

async function sampleLatency(conns: BenchConnection[], target: PgbenchTarget, keys: ScramKeyCache, samples: number): Promise<{ idleQueryMs: number[]; newClientMs: number[] }> {
  const idleQueryMs: number[] = [];
  const newClientMs: number[] = [];
  for (let i = 0; i < samples; i++) {
    // Spread over the idle clients, so most samples find a client that has been idle a while.
    const conn = conns[Math.floor((i * conns.length) / samples)]!;
    const t0 = performance.now();
    await conn.query('SELECT 1');
    idleQueryMs.push(performance.now() - t0);
    if (i % 4 === 0) newClientMs.push(await connectToFirstRow(target, keys));
  }
  return { idleQueryMs, newClientMs };
}

/** Holds `clients` idle connections on one system and measures its RSS and latencies. */
async function hold(system: string, pid: number, target: PgbenchTarget, clients: number, samples: number, keys: ScramKeyCache, progress: (m: string) => void): Promise<Held> {
  const conns: BenchConnection[] = [];
  try {
    conns.push(await BenchConnection.open(target, keys));
    for (let i = 0; i < 20; i++) await conns[0]!.query('SELECT 1');
    const rssBeforeBytes = await settledRss(pid);
    const t0 = performance.now();
    const errors = await openMany(target, clients - 1, keys, conns, (n) => progress(`${system}: ${n}/${clients} idle clients`));
    const openPerSecond = (conns.length - 1) / ((performance.now() - t0) / 1000);
    const rssAfterBytes = await settledRss(pid);
    progress(`${system}: ${conns.length} idle clients, sampling latency`);
    const latency = await sampleLatency(conns, target, keys, samples);
    return { system, clients: conns.length, rssBeforeBytes, rssAfterBytes, bytesPerClient: (rssAfterBytes - rssBeforeBytes) / Math.max(1, conns.length - 1), openPerSecond, ...latency, errors };
  } finally {
    for (let i = 0; i < conns.length; i += 1000) await Promise.all(conns.slice(i, i + 1000).map((c) => c.close()));
  }
}

const kib = (bytes: number) => round(bytes / 1024, 1);
const mib = (bytes: number) => round(bytes / 2 ** 20, 1);

/**
 * Idle client connections held open at 1k and 10k: the gateway's RSS per client
 * (from /proc) and how an idle client's next query (a checkout in transaction
 * mode) and a new client's first row slow down as the count grows. PgBouncer in
 * the same mode holds the same clients, alternating with pgwake at each count.
 */
export const idleConnectionsScenario: Scenario = {
  name: 'idle-connections',
  title: 'Idle connections: memory per client and latency as clients grow',
  async run(ctx) {
    const keys = new ScramKeyCache();
    const notes: string[] = [];
    const samples = ctx.quick ? 60 : 400;
    ctx.progress('starting pgwake');
    // Every idle client comes from 127.0.0.1: lift the per-address cap (PGWAKE_MAX_CLIENTS_PER_ADDRESS, 1000 by default).
    const pgwake = await PgwakeProcess.start({ PGWAKE_MAX_CLIENTS_PER_ADDRESS: '0' });
    try {
      const login = await pgwake.createTenant('idle');
      const poolSize = 10;
      const txDb = await pgwake.createDb('idle', login, 'app', { size: 'L8', pool_mode: 'transaction', pool_size: poolSize, suspend_timeout_seconds: 3600 }).catch(() => undefined);
      const probe = txDb ? await probeTransactionMode(pgwake.gatewayTarget(txDb), poolSize) : { pools: false, reason: 'the API refused a transaction-mode db' };
      const mode = probe.pools ? 'transaction' : 'session';
      const db = probe.pools ? txDb! : await pgwake.createDb('idle', login, 'app-session', { size: 'L8', suspend_timeout_seconds: 3600 });
      const target = pgwake.gatewayTarget(db);
      const direct = await pgwake.directTarget(db);
      const authSecret = await pgwake.computeScramVerifier(db);

      // Each idle client is a descriptor in the bench, in pgwake and in PgBouncer; session mode also a backend.
      const self = await openFilesLimit('self');
      const child = await openFilesLimit(pgwake.pid);
      const fdRoom = Math.min(self.soft, child.soft) - 500;
      // Quick: 2k rather than 10k (opening 10k clients on each system is most of the full run's time).
      let wanted = ctx.quick ? [1000, 2000] : [1000, 10_000];
      if (!probe.pools) {
        wanted = [100, 750];
        notes.push(`Session mode: ${probe.reason}. Each idle session-mode client holds a backend, so the counts stop below the L8 compute's max_connections (800); 1k and 10k idle clients need transaction mode.`);
      }
      const levels = wanted.map((n) => Math.min(n, fdRoom));
      if (levels.some((n, i) => n < wanted[i]!)) notes.push(`Capped at ${fdRoom} clients by the open-files limits (bench ${self.soft}, pgwake ${child.soft}; hard limits ${self.hard} and ${child.hard}).`);
      notes.push(`Open-files limits: bench process ${self.soft} (hard ${self.hard}), pgwake ${child.soft} (hard ${child.hard}).`);

      const bouncerInstalled = pgbouncerVersion() !== undefined;
      if (!bouncerInstalled) notes.push('PgBouncer is not installed: its rows are left out.');
      const route = bouncerInstalled ? await computeRoute(pgwake, db, direct) : undefined;
      if (route) notes.push(`PgBouncer reaches the compute ${describeRoute(route)}.`);
      const systems = ['pgwake', ...(bouncerInstalled ? ['PgBouncer'] : [])];
      const results: Held[] = [];
      const steps = levels.length * systems.length;
      for (const [li, clients] of levels.entries()) {
        // Alternate which system goes first at each count.
        const order = li % 2 === 0 ? systems : [...systems].reverse();
        for (const [si, system] of order.entries()) {
          const progress = (m: string) => ctx.progress(m, (li * systems.length + si) / steps);
          if (system === 'pgwake') {
            results.push(await hold(`pgwake (${mode})`, pgwake.pid, target, clients, samples, keys, progress));
          } else {
            // A fresh PgBouncer per count: its server connections go when it stops, so the next count starts alike.
            const bouncer = await PgBouncer.start(route!.backend, { poolMode: mode, poolSize: mode === 'transaction' ? poolSize : clients + 10, authSecret });
            try {
              results.push(await hold(`PgBouncer (${mode})`, bouncer.pid, bouncer.target(direct), clients, samples, keys, progress));
            } finally {
              await bouncer.stop();
            }
          }
        }
      }

      const ours = results.filter((r) => r.system.startsWith('pgwake'));
      const theirs = results.filter((r) => r.system.startsWith('PgBouncer'));
      const memory: ReportTable = {
        title: `RSS per idle client, ${mode} mode (RSS after − before, ÷ clients)`,
        columns: ['system', 'idle clients', 'RSS before, MiB', 'RSS after, MiB', 'KiB per client', 'opened per s', 'failed to open'],
        rows: results.map((r) => [r.system, r.clients, mib(r.rssBeforeBytes), mib(r.rssAfterBytes), kib(r.bytesPerClient), round(r.openPerSecond, 0), r.errors]),
      };
      const latency: ReportTable = {
        title: `Latency while the others sit idle, ms (${samples} idle-client queries, ${Math.ceil(samples / 4)} new clients per row)`,
        columns: ['system', 'idle clients', 'idle client\'s next query p50', 'p99', 'new client to first row p50', 'p99'],
        rows: results.map((r) => [r.system, r.clients, round(percentile(r.idleQueryMs, 50), 2), round(percentile(r.idleQueryMs, 99), 2), round(percentile(r.newClientMs, 50), 2), round(percentile(r.newClientMs, 99), 2)]),
      };
      const ratios: HeadlineRatio[] = [];
      for (const o of ours) {
        const b = theirs.find((t) => t.clients === o.clients);
        if (b) ratios.push({ measure: `RSS per idle client at ${o.clients} clients`, system: o.system, baseline: b.system, ratio: ratioSpread([o.bytesPerClient], [b.bytesPerClient]), better: 'lower' });
      }
      const first = ours[0];
      const last = ours[ours.length - 1];
      if (first && last && first !== last) {
        ratios.push({
          measure: `idle client's next query p50, ${last.clients} vs ${first.clients} idle clients`,
          system: `${last.clients} clients`,
          baseline: `${first.clients} clients`,
          ratio: ratioSpread([percentile(last.idleQueryMs, 50)], [percentile(first.idleQueryMs, 50)]),
          better: 'lower',
        });
      }
      notes.push('One measurement per count and system (RSS is not noisy the way timings are); the two systems alternate which goes first at each count. Idle clients are the bench\'s lean wire client (SCRAM keys cached).');
      return { tables: [memory, latency], data: { mode, levels, results }, notes, ratios };
    } finally {
      await pgwake.stop();
    }
  },
};
