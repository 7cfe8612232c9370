import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Catalog,
  createLogger,
  createMetricsRegistry,
  InProcessCoordinator,
  loadOrCreateSecretKey,
  postgresBinDir,
  processOwnerFor,
  SecretBox,
  startEmbeddedCatalog,
  type Config,
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

/**
 * Builds the shared parts once and starts the asked roles on them: what
 * `pgwake start` runs, and what the tests start against real servers.
 * Order: catalog, autoscaler (it serves wakes), gateway, control API
 * (its dsn_template needs the gateway's real port).
 */
export async function startStack(config: Config, roles: RoleName[], logger: Logger = createLogger(config.logLevel)): Promise<Stack> {
  const secrets = new SecretBox(loadOrCreateSecretKey(config.secretKey, config.dataDir));
  const binDir = postgresBinDir(config.pgBin);
  const owner = processOwnerFor(config.computeOsUser);
  const coordinator = new InProcessCoordinator();
  const stops: (() => Promise<void>)[] = [];
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
    stops.push(() => coordinator.close());
    const metrics = createMetricsRegistry();
    const ctx: RoleContext = { config, catalog, coordinator, secrets, logger, metrics, binDir, owner };
    const stack: Stack = { ctx, catalogUrl, stop: stopAll };
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
    if (roles.includes('gateway') || roles.includes('autoscaler')) {
      const server = await serveMetrics(ctx, config.metricsPort);
      stack.metricsPort = (server.address() as AddressInfo).port;
      stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
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
