import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import type { Config, Logger } from '../core/index.js';
import { startStack } from './stack.js';

/** What a worker tells the primary once its gateway listens. */
interface WorkerUp {
  type: 'pgwake:gateway-up';
  port: number;
  gatewayId: string;
}

const RESPAWN_DELAY_MS = 1_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * `pgwake gateway` with PGWAKE_GATEWAY_WORKERS > 1: several gateway processes on one
 * port, to use every core. node:cluster hands each new connection to one worker;
 * each worker is a whole gateway with its own id, coordinating through Redis exactly
 * as gateways on other machines do. The primary only forks, respawns a worker that
 * died, serves the workers' metrics summed on PGWAKE_METRICS_PORT, and passes a
 * stop signal on.
 */
export async function runGatewayCluster(config: Config, logger: Logger): Promise<number> {
  return cluster.isPrimary ? runPrimary(config, logger) : runWorker(config, logger);
}

async function runPrimary(config: Config, logger: Logger): Promise<number> {
  const log = logger.child({ role: 'gateway-primary' });
  let stopping = false;
  const up = new Map<Worker, WorkerUp>();
  const fork = () =>
    new Promise<WorkerUp>((resolve, reject) => {
      const worker = cluster.fork();
      worker.on('message', (msg: WorkerUp) => {
        if (msg?.type !== 'pgwake:gateway-up') return;
        up.set(worker, msg);
        resolve(msg);
      });
      worker.once('exit', (code, signal) => {
        const wasUp = up.delete(worker);
        reject(new Error(`gateway worker ${worker.process.pid} exited (${signal ?? code}) before it listened`));
        if (stopping || !wasUp) return;
        log.error({ pid: worker.process.pid, code, signal }, 'gateway worker died; starting another');
        setTimeout(() => void fork().catch((err: Error) => log.error({ err: err.message }, 'could not start a gateway worker')), RESPAWN_DELAY_MS);
      });
    });

  const stopWorkers = async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            w.process.kill('SIGTERM');
          }),
      ),
    );
  };

  let first: WorkerUp;
  try {
    // One first: it makes what the data dir must hold once (the self-signed TLS certificate) before the others read it.
    first = await fork();
    await Promise.all(Array.from({ length: config.gatewayWorkers - 1 }, fork));
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'gateway workers could not start');
    await stopWorkers();
    return 1;
  }

  const aggregator = new AggregatorRegistry();
  const metrics = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    aggregator.clusterMetrics().then(
      (body) => res.writeHead(200, { 'content-type': aggregator.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      metrics.once('error', reject);
      metrics.listen(config.metricsPort, config.listenHost, () => resolve());
    });
  } catch (err) {
    log.fatal({ err: (err as Error).message }, `cannot serve metrics on ${config.listenHost}:${config.metricsPort}`);
    await stopWorkers();
    return 1;
  }

  const host = config.listenHost;
  console.log(
    `pgwake is up:\n  gateway      postgres://${host}:${first.port}  (${config.gatewayWorkers} workers: ${[...up.values()].map((u) => u.gatewayId).join(', ')})\n` +
      `  metrics      http://${host}:${(metrics.address() as AddressInfo).port}/metrics  (all workers, summed)\nCtrl-C stops everything.`,
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping gateway workers');
      void stopWorkers().then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await new Promise<void>((resolve) => metrics.close(() => resolve()));
  console.log('pgwake stopped.');
  return 0;
}

async function runWorker(config: Config, logger: Logger): Promise<number> {
  const stack = await startStack(config, ['gateway'], logger, { metrics: 'cluster-worker' });
  const up: WorkerUp = { type: 'pgwake:gateway-up', port: stack.gateway!.port, gatewayId: stack.gateway!.gatewayId };
  process.send!(up);
  await new Promise<void>((resolve) => {
    // The primary decides when workers stop: a terminal's Ctrl-C reaches every process of the group, the primary passes SIGTERM on.
    process.on('SIGINT', () => undefined);
    process.once('SIGTERM', () => resolve());
    // A primary that died leaves nobody to hand out connections: stop too.
    process.once('disconnect', () => resolve());
  });
  await stack.stop();
  return 0;
}
