import { execFile } from 'node:child_process';
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

/** One pgbench run; `extra` carries -S, -M, -C and the like. */
export async function pgbench(t: PgbenchTarget, o: { clients: number; seconds: number; extra?: string[] }): Promise<PgbenchRun> {
  const threads = Math.min(o.clients, 2);
  const { stdout } = await run(
    'pgbench',
    ['-n', '-c', String(o.clients), '-j', String(threads), '-T', String(o.seconds), ...(o.extra ?? []), ...args(t), t.database],
    { env: env(t), maxBuffer: 16 * 1024 * 1024 },
  ).catch((err: Error & { stderr?: string; stdout?: string }) => {
    throw new Error(`pgbench failed: ${err.stderr?.trim() || err.message}`);
  });
  const tps = /tps = ([\d.]+)/.exec(stdout);
  const latency = /latency average = ([\d.]+) ms/.exec(stdout);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (!tps) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return { tps: Number(tps[1]), latencyMs: latency ? Number(latency[1]) : Number.NaN, failed: failed ? Number(failed[1]) : 0 };
}
