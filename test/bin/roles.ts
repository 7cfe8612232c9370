import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresBinDir, processOwnerFor, SecretBox, startEmbeddedCatalog, type EmbeddedCatalog } from '../../core/index.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One `pgwake <role>` process, as an operator runs it; what it printed once up. */
export interface RoleProcess {
  role: string;
  pid: number;
  gatewayPort?: number;
  apiUrl?: string;
  metricsUrl?: string;
  /** Everything it printed (stdout and stderr), for a failing test's message. */
  output(): string;
  /** Resolves once it said it is up (a standby autoscaler: once it took the lease). */
  up: Promise<void>;
  /** SIGTERM, then SIGKILL if it does not end in time; resolves with how it ended. */
  stop(): Promise<number | string | null>;
}

/** What separate role processes share: a Redis, a catalog Postgres, one secret key. */
export interface SharedServices {
  redis: TestRedis;
  catalog: EmbeddedCatalog;
  secretKey: string;
  /** The env every role process gets. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSharedServices(): Promise<SharedServices> {
  const secretKey = randomBytes(32).toString('hex');
  const redis = await startTestRedis();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'pgwake-catalog-'));
  await chmod(dataDir, 0o755);
  let catalog: EmbeddedCatalog;
  try {
    catalog = await startEmbeddedCatalog({ dataDir, binDir: postgresBinDir(undefined), owner: processOwnerFor('nobody'), secrets: new SecretBox(secretKey), startTimeoutMs: 30_000 });
  } catch (err) {
    await redis.stop();
    throw err;
  }
  return {
    redis,
    catalog,
    secretKey,
    env: { REDIS_URL: redis.url, CATALOG_URL: catalog.url, PGWAKE_SECRET_KEY: secretKey },
    async stop() {
      await catalog.stop();
      await redis.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts `pgwake <role>` with its own temp data dir and OS-chosen ports; resolves once it says it is up,
 * or at once with `waitUntilUp: false` (a standby autoscaler is up only once it holds the lease).
 */
export async function startRole(role: 'gateway' | 'autoscaler' | 'control-api', env: Record<string, string>, startTimeoutMs = 60_000, waitUntilUp = true): Promise<RoleProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), `pgwake-${role}-`));
  await chmod(dataDir, 0o755); // computes run as an unprivileged user when tests run as root
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin', 'pgwake.ts'), role], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      PGWAKE_DATA_DIR: dataDir,
      PGWAKE_LISTEN_HOST: '127.0.0.1',
      PGWAKE_GATEWAY_HOST: '127.0.0.1',
      PGWAKE_HTTP_PORT: '0',
      PGWAKE_GATEWAY_PORT: '0',
      PGWAKE_METRICS_PORT: '0',
      PGWAKE_LOG_LEVEL: process.env.PGWAKE_TEST_LOG_LEVEL ?? 'warn',
      PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const how = await exited;
      clearTimeout(timer);
      await rm(dataDir, { recursive: true, force: true });
      return how;
    }
    await rm(dataDir, { recursive: true, force: true });
    return exited;
  };
  const up = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgwake ${role} did not come up within ${startTimeoutMs} ms:\n${output}`)), startTimeoutMs);
    const check = () => {
      if (output.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`pgwake ${role} exited (${how}) before it was up:\n${output}`));
    });
  });
  if (!waitUntilUp) up.catch(() => undefined);
  else {
    try {
      await up;
    } catch (err) {
      await stop();
      throw err;
    }
  }
  return {
    role,
    pid: child.pid!,
    up,
    gatewayPort: numberAfter(output, /gateway\s+postgres:\/\/[^:\s]+:(\d+)/),
    apiUrl: /control API\s+(http:\/\/\S+)/.exec(output)?.[1],
    metricsUrl: /metrics\s+(http:\/\/\S+\/metrics)/.exec(output)?.[1],
    output: () => output,
    stop,
  };
}

function numberAfter(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The value of a Prometheus sample in a `/metrics` body, 0 when absent. */
export function sample(body: string, name: string, labels = ''): number {
  const line = body.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** One control-API request from a role test: status and parsed JSON body (a bearer key when given). */
export async function callApi(method: string, url: string, key?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}
