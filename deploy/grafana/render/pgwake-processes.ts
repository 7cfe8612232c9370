import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../core/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** One `pgwake <role>` process of the distributed shape, named as deploy/prometheus/prometheus.yml names it. */
export interface RoleProcess {
  instanceName: string;
  role: 'gateway' | 'autoscaler' | 'control-api';
  /** Where its /metrics is (the control API's is on its HTTP port). */
  metricsAddress: string;
  gatewayPort?: number;
  apiUrl?: string;
  /** SIGTERM, then SIGKILL after 30 s. */
  stop(): Promise<void>;
}

/**
 * Starts `pgwake <role>` as an operator would (docker-compose.yml's shape, one
 * process per role) on ports chosen here, so that a standby autoscaler, which
 * prints nothing until it holds the lease, is reachable all the same.
 */
export async function startRole(instanceName: string, role: RoleProcess['role'], env: Record<string, string>, dir: string, dataDirName = instanceName): Promise<RoleProcess> {
  // Autoscalers share one: the one that takes the lease over finds the computes there (as in docker-compose.yml).
  const dataDir = path.join(dir, dataDirName);
  await mkdir(dataDir, { recursive: true });
  await chmod(dataDir, 0o755); // computes run as an unprivileged user when this runs as root
  const httpPort = await freePort();
  const gatewayPort = await freePort();
  const metricsPort = await freePort();
  const log = createWriteStream(path.join(dir, `${instanceName}.log`));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin', 'pgwake.ts'), role], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      PGWAKE_DATA_DIR: dataDir,
      PGWAKE_LISTEN_HOST: '127.0.0.1',
      PGWAKE_GATEWAY_HOST: '127.0.0.1',
      PGWAKE_HTTP_PORT: String(httpPort),
      PGWAKE_GATEWAY_PORT: String(gatewayPort),
      PGWAKE_METRICS_PORT: String(metricsPort),
      PGWAKE_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const metricsAddress = `127.0.0.1:${role === 'control-api' ? httpPort : metricsPort}`;
  const proc: RoleProcess = {
    instanceName,
    role,
    metricsAddress,
    ...(role === 'gateway' ? { gatewayPort } : {}),
    ...(role === 'control-api' ? { apiUrl: `http://127.0.0.1:${httpPort}` } : {}),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
  // Up once it answers where it listens (for a gateway: its Postgres port too).
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgwake ${role} (${instanceName}) exited; see ${path.join(dir, `${instanceName}.log`)}`);
    const metricsUp = await fetch(`http://${metricsAddress}/metrics`).then((r) => r.ok, () => false);
    if (metricsUp && (role !== 'gateway' || (await listening(gatewayPort)))) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`pgwake ${role} (${instanceName}) did not come up in 90 s; see its log in ${dir}`);
    }
    await sleep(200);
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The value of an unlabelled sample at `address`/metrics (undefined while it does not answer). */
export async function sampleAt(address: string, name: string): Promise<number | undefined> {
  const text = await fetch(`http://${address}/metrics`).then((r) => r.text(), () => undefined);
  const line = text?.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
