import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PgbenchTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Extra libpq settings, e.g. sslmode. */
  sslmode?: 'disable' | 'require';
}

export interface PgbenchRun {
  tps: number;
  /** "number of transactions actually processed". */
  transactions: number;
  latencyMs: number;
  failed: number;
  /** "initial connection time" (or, with -C, "average connection time"), ms. */
  connectionMs?: number;
  /** With `progressSeconds`: TPS per interval, as pgbench's -P prints it. */
  timeline?: ProgressPoint[];
  /** With `latencySampleRate`: per-transaction latencies (ms) from pgbench's -l log. */
  latenciesMs?: number[];
}

export interface ProgressPoint {
  /** Seconds since the run started. */
  t: number;
  tps: number;
  latencyMs: number;
  failed: number;
}

function env(t: PgbenchTarget): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: t.password, PGSSLMODE: t.sslmode ?? 'disable', PGCONNECT_TIMEOUT: '30' };
}

function args(t: PgbenchTarget): string[] {
  return ['-h', t.host, '-p', String(t.port), '-U', t.user];
}

export async function pgbenchInit(t: PgbenchTarget, scale = 1): Promise<void> {
  await run('pgbench', ['-i', '-q', '-s', String(scale), ...args(t), t.database], { env: env(t) });
}

/** The summary pgbench prints at the end of a run. */
export function parsePgbenchSummary(stdout: string): Pick<PgbenchRun, 'tps' | 'transactions' | 'latencyMs' | 'failed' | 'connectionMs'> {
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const processed = /number of transactions actually processed: (\d+)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  const connection = /(?:initial|average) connection time = ([\d.]+) ms/.exec(stdout);
  // A run that finished no transaction in time (all clients still logging in) prints no tps line: that is 0 tps.
  const none = processed?.[1] === '0';
  if (!tps && !none) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return {
    tps: tps ? Number(tps[1]) : 0,
    transactions: processed ? Number(processed[1]) : 0,
    latencyMs: latency ? Number(latency[1]) : Number.NaN,
    failed: failed ? Number(failed[1]) : 0,
    ...(connection ? { connectionMs: Number(connection[1]) } : {}),
  };
}

/** `-P n` lines: "progress: 3.0 s, 20456.1 tps, lat 0.977 ms stddev 0.310, 0 failed". */
export function parseProgressLines(stderr: string): ProgressPoint[] {
  const points: ProgressPoint[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+|NaN) ms(?: stddev [\d.]+| stddev NaN)?(?:, (?:\(lag [^)]*\), )?(\d+) failed)?/.exec(line.trim());
    if (m) points.push({ t: Number(m[1]), tps: Number(m[2]), latencyMs: Number(m[3]), failed: m[4] ? Number(m[4]) : 0 });
  }
  return points;
}

/** `-l` lines: "client_id transaction_no time script_no time_epoch time_us …", time in µs ("failed" for a failed one). */
export function parseTransactionLog(text: string): number[] {
  const latencies: number[] = [];
  for (const line of text.split('\n')) {
    const micros = Number(line.split(' ')[2]);
    if (line && Number.isFinite(micros)) latencies.push(micros / 1000);
  }
  return latencies;
}

/**
 * How long a run lasts: `seconds` (-T), or `transactionsPerClient` (-t): a fixed
 * amount of work, which a short (quick) run finishes without rounding up to a whole second.
 */
export type RunLength = { seconds: number; transactionsPerClient?: never } | { transactionsPerClient: number; seconds?: never };

/** "-T 5" or "-t 400": the run length as the pgbench option, for report titles. */
export function describeRunLength(l: RunLength): string {
  return l.seconds !== undefined ? `-T ${l.seconds}` : `-t ${l.transactionsPerClient}`;
}

/** One pgbench run; `extra` carries -S, -M, -C and the like. */
export async function pgbench(
  t: PgbenchTarget,
  o: RunLength & { clients: number; extra?: string[]; threads?: number; progressSeconds?: number; latencySampleRate?: number; cpus?: string },
): Promise<PgbenchRun> {
  const threads = o.threads ?? Math.min(o.clients, 2);
  const logDir = o.latencySampleRate ? await mkdtemp(path.join(tmpdir(), 'pgwake-bench-pgbench-')) : undefined;
  const optional = [
    ...(o.progressSeconds ? ['-P', String(o.progressSeconds)] : []),
    ...(logDir ? ['-l', `--log-prefix=${path.join(logDir, 'tx')}`, `--sampling-rate=${o.latencySampleRate}`] : []),
  ];
  try {
    const pgbenchArgs = ['-n', '-c', String(o.clients), '-j', String(threads), ...(o.seconds !== undefined ? ['-T', String(o.seconds)] : ['-t', String(o.transactionsPerClient)]), ...optional, ...(o.extra ?? []), ...args(t), t.database];
    // `cpus`: pgbench confined to those CPUs (taskset), for a run laid out by bench/tools/cpu-layout.
    const [command, commandArgs]: [string, string[]] = o.cpus ? ['taskset', ['-c', o.cpus, 'pgbench', ...pgbenchArgs]] : ['pgbench', pgbenchArgs];
    const { stdout, stderr } = await run(command, commandArgs, { env: env(t), maxBuffer: 16 * 1024 * 1024 }).catch((err: Error & { stderr?: string; stdout?: string }) => {
      throw new Error(`pgbench failed: ${err.stderr?.trim().split('\n').slice(-5).join('\n') || err.message}`);
    });
    const result: PgbenchRun = parsePgbenchSummary(stdout);
    if (o.progressSeconds) result.timeline = parseProgressLines(stderr);
    if (logDir) {
      result.latenciesMs = [];
      for (const f of await readdir(logDir)) result.latenciesMs.push(...parseTransactionLog(await readFile(path.join(logDir, f), 'utf8')));
    }
    return result;
  } finally {
    if (logDir) await rm(logDir, { recursive: true, force: true });
  }
}
