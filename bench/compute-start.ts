/**
 * Local compute driver timings on this machine: initdb vs template copy, db
 * provision end to end, and wake (start-to-ready) and suspend over repeated runs.
 *
 *   npx tsx bench/compute-start.ts [--wakes 20] [--dbs 5] [--file-runs 5] [--size L1]
 *
 * Prints a Markdown table and writes bench/results/compute-start-<time>.json.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startStack } from '../bin/stack.js';
import { copyDataDir, createScramVerifier, formatScramVerifier, initDataDir, INTERNAL_SUPERUSER, isProfileName, loadConfig, PROFILE_NAMES, randomSecret, type ProfileName } from '../core/index.js';
import { machineInfo } from './report.js';
import { median, percentile, round } from './stats.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const WAKES = arg('wakes', 20);
const DBS = arg('dbs', 5);
const FILE_RUNS = arg('file-runs', 5);
const sizeAt = process.argv.indexOf('--size');
const SIZE = sizeAt >= 0 ? process.argv[sizeAt + 1] : 'L1';
if (!isProfileName(SIZE ?? '')) throw new Error(`--size: one of ${PROFILE_NAMES.join(', ')}`);

const root = await mkdtemp(path.join(tmpdir(), 'pgwake-bench-compute-'));
await chmod(root, 0o755);
// The autoscaler's own log lines carry the phase timings (copy, start, bootstrap, start_ms of each wake).
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const config = loadConfig({ PGWAKE_DATA_DIR: root, PGWAKE_HTTP_PORT: '0', PGWAKE_GATEWAY_PORT: '0', PGWAKE_METRICS_PORT: '0', PGWAKE_LOG_LEVEL: 'info' });
const stack = await startStack(config, ['autoscaler'], pino({ level: 'info' }, sink));
const { ctx } = stack;
const ms = (t0: number) => performance.now() - t0;
const control = (action: 'provision' | 'wake' | 'suspend', dbId: string) => ctx.coordinator.requestControl({ action, dbId }, 60_000);
const field = (msg: string, key: string) => lines.filter((l) => l.msg === msg).map((l) => Number(l[key]));

try {
  // Each round: initdb, a bare template copy, and a whole provision, side by side on the same disk.
  const scratch = path.join(root, 'scratch');
  await mkdir(scratch);
  const template = path.join(root, 'computes', 'template');
  // The template is made at autoscaler start; the first provision would otherwise wait for it.
  while (!existsSync(path.join(template, 'PG_VERSION'))) await new Promise((r) => setTimeout(r, 20));
  const { account } = await ctx.catalog.accounts.create({ name: 'bench' });
  const initdb: number[] = [];
  const copy: number[] = [];
  const provision: number[] = [];
  const dbIds: string[] = [];
  for (let i = 0; i < Math.max(FILE_RUNS, DBS); i++) {
    if (i < FILE_RUNS) {
      let t0 = performance.now();
      await initDataDir({ binDir: ctx.binDir, dataDir: path.join(scratch, `init-${i}`, 'data'), owner: ctx.owner, superuser: INTERNAL_SUPERUSER, superuserPassword: 'bench' });
      initdb.push(ms(t0));
      t0 = performance.now();
      await copyDataDir(template, path.join(scratch, `copy-${i}`, 'data'));
      copy.push(ms(t0));
    }
    if (i < DBS) {
      const pw = randomSecret();
      const tenant = await ctx.catalog.tenants.create({ accountId: account.id, name: `t${i}`, pgUser: `bench_${process.pid}_${i}`, passwordSealed: ctx.secrets.seal(pw), scramVerifier: formatScramVerifier(createScramVerifier(pw)) });
      const db = await ctx.catalog.dbs.create({ accountId: account.id, tenantId: tenant.id, name: 'app', size: SIZE as ProfileName, suspendTimeoutSeconds: 300, poolMode: 'session', poolSize: null });
      const t0 = performance.now();
      await control('provision', db.id);
      provision.push(ms(t0));
      dbIds.push(db.id);
    }
  }
  await rm(scratch, { recursive: true, force: true });

  const wake: number[] = [];
  const suspend: number[] = [];
  for (let i = 0; i < WAKES; i++) {
    const id = dbIds[i % dbIds.length]!;
    let t0 = performance.now();
    await control('wake', id);
    wake.push(ms(t0));
    t0 = performance.now();
    await control('suspend', id);
    suspend.push(ms(t0));
  }
  const startToReady = field('db running', 'start_ms');
  const stopMs = field('db suspended', 'stop_ms');

  const row = (what: string, s: number[]) => [what, String(s.length), String(round(median(s))), String(round(percentile(s, 90))), String(round(Math.min(...s))), String(round(Math.max(...s)))];
  const rows = [
    row('initdb (new cluster)', initdb),
    row('template copy (cp -a)', copy),
    row('provision: copy', field('compute provisioned', 'copy_ms')),
    row('provision: start', field('compute provisioned', 'start_ms')),
    row('provision: role+database, stop', field('compute provisioned', 'bootstrap_and_stop_ms')),
    row('provision, end to end (requestControl)', provision),
    row('wake: start-to-ready (postgres spawned → ready log line)', startToReady),
    row('wake, end to end (requestControl, catalog writes included)', wake),
    row('suspend: fast shutdown', stopMs),
    row('suspend, end to end (requestControl)', suspend),
  ];
  const table = ['| what | n | median ms | p90 ms | min ms | max ms |', '|---|---|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const m = machineInfo();
  console.log(`Local compute driver, profile ${SIZE}, ${m.cpus} × ${m.cpuModel}, Node ${m.node}\n\n${table}`);
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  await mkdir(out, { recursive: true });
  const file = path.join(out, `compute-start-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ machine: m, size: SIZE, initdb, copy, provision, startToReady, wake, stopMs, suspend }, null, 2));
  console.log(`\nraw: ${file}`);
} finally {
  await stack.stop();
  await rm(root, { recursive: true, force: true });
}
