import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import {
  Catalog,
  createLogger,
  createMetricsRegistry,
  InProcessCoordinator,
  loadOrCreateSecretKey,
  RedisCoordinator,
  postgresBinDir,
  processOwnerFor,
  SecretBox,
  startEmbeddedCatalog,
  type Config,
  type Coordinator,
  type EmbeddedCatalog,
  type Logger,
  type RoleContext,
} from '../core/index.js';
import { startAutoscaler, type AutoscalerRole } from '../autoscaler/index.js';
import { startControlApi, type ControlApiRole } from '../control-api/index.js';
import { startGateway, type GatewayRole } from '../gateway/index.js';

export type RoleName = 'gateway' | 'autoscaler' | 'control-api';

export interface Stack {
  ctx: RoleContext;
  catalogUrl: string;
  gateway?: GatewayRole;
  autoscaler?: AutoscalerRole;
  controlApi?: ControlApiRole;
  metricsPort?: number;
  stop(): Promise<void>;
}

export interface StackOptions {
  /**
   * `serve` (default): the gateway and autoscaler roles serve `/metrics` on PGWAKE_METRICS_PORT.
   * `cluster-worker`: a gateway worker under node:cluster; its primary serves every worker's metrics, summed.
   */
  metrics?: 'serve' | 'cluster-worker';
}

/**
 * Builds the shared parts once and starts the asked roles on them: what
 * `pgwake start` runs, and what the tests start against real servers.
 * Order: catalog, autoscaler (it serves wakes), gateway, control API
 * (its dsn_template needs the gateway's real port).
 */
export async function startStack(config: Config, roles: RoleName[], logger: Logger = createLogger(config.logLevel), options: StackOptions = {}): Promise<Stack> {
  const secrets = new SecretBox(loadOrCreateSecretKey(config.secretKey, config.dataDir));
  const binDir = postgresBinDir(config.pgBin);
  const owner = processOwnerFor(config.computeOsUser);
  // With REDIS_URL the roles may run in many processes, so they coordinate through Redis.
  const coordinator: Coordinator = config.redisUrl ? await RedisCoordinator.connect(config.redisUrl, { logger }) : new InProcessCoordinator();
  const stops: (() => Promise<void>)[] = [() => coordinator.close()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => logger.error({ err }, 'stop failed'));
    stops.length = 0;
  };
  try {
    let embedded: EmbeddedCatalog | undefined;
    if (!config.catalogUrl) {
      embedded = await startEmbeddedCatalog({
        dataDir: config.dataDir,
        binDir,
        owner,
        secrets,
        startTimeoutMs: config.computeStartTimeoutMs,
        onLog: (line) => logger.debug({ component: 'catalog' }, line),
      });
      stops.push(() => embedded!.stop());
    }
    const catalogUrl = config.catalogUrl ?? embedded!.url;
    const catalog = await Catalog.open(catalogUrl, coordinator);
    stops.push(() => catalog.close());
    const metrics = createMetricsRegistry();
    const ctx: RoleContext = { config, catalog, coordinator, secrets, logger, metrics, binDir, owner };
    const stack: Stack = { ctx, catalogUrl, stop: stopAll };
    if (options.metrics !== 'cluster-worker' && (roles.includes('gateway') || roles.includes('autoscaler'))) {
      // Served before the roles start: a standby autoscaler waits for the lease inside its start, and says so here meanwhile.
      const server = await serveMetrics(ctx, config.metricsPort);
      stack.metricsPort = (server.address() as AddressInfo).port;
      stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    }
    if (roles.includes('autoscaler')) {
      stack.autoscaler = await startAutoscaler(ctx);
      stops.push(() => stack.autoscaler!.stop());
    }
    if (roles.includes('gateway')) {
      stack.gateway = await startGateway(ctx);
      stops.push(() => stack.gateway!.stop());
      config.gatewayPort = stack.gateway.port;
    }
    if (roles.includes('control-api')) {
      stack.controlApi = await startControlApi(ctx);
      stops.push(() => stack.controlApi!.stop());
    }
    if (options.metrics === 'cluster-worker') {
      // Constructing one is what makes a worker answer its primary's requests for metrics.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([metrics]);
    }
    return stack;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function serveMetrics(ctx: RoleContext, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    ctx.metrics
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': ctx.metrics.contentType }).end(body))
      .catch(() => res.writeHead(500).end());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ctx.config.listenHost, () => resolve(server));
  });
}
