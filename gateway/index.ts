import { randomId, type RoleContext, type RunningRole } from '../core/index.js';
import { ActivityTracker } from './activity.js';
import { ScramClientKeyCache } from './auth/scram-client.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { CancelKeys } from './cancellation.js';
import { ComputeRoutes } from './compute-routes.js';
import { ComputeSockets } from './compute-sockets.js';
import { ConnectionLimits } from './connection-limits.js';
import { listen, type Listener } from './listener.js';
import { GatewayMetrics } from './metrics.js';
import { Freezes, ServerPools } from './pool/index.js';
import { serveClient, type GatewayDeps } from './session.js';
import { SessionLifetimes } from './session-lifetime.js';
import { loadTls } from './tls.js';

export interface GatewayRole extends RunningRole {
  port: number;
  /** The id this gateway reports its activity under. */
  gatewayId: string;
}

/**
 * Raw TCP Postgres gateway on `PGWAKE_GATEWAY_PORT` (DESIGN §4). A connection goes
 * through handshake.ts → tls.ts → route.ts → login.ts (login-target.ts,
 * network-checks.ts, auth/scram.ts or auth/oauth.ts) → connection-limits.ts → wake.ts →
 * connect-compute.ts (compute-sockets.ts: a compute's Unix socket, or TCP) → pool/
 * (checkout, freeze) → relay, driven by session.ts;
 * cancellation.ts answers CancelRequest; activity.ts tells the autoscaler which
 * dbs are in use and which freezes this gateway holds.
 */
export async function startGateway(ctx: RoleContext): Promise<GatewayRole> {
  const gatewayId = randomId('gw');
  const logger = ctx.logger.child({ role: 'gateway', gateway_id: gatewayId });
  const tls = await loadTls(ctx.config, logger);
  const routes = new ComputeRoutes(ctx.coordinator);
  const activity = new ActivityTracker(ctx.coordinator, gatewayId, logger);
  const metrics = GatewayMetrics.for(ctx.metrics, ctx.config.metricsPerDbLimit);
  const keys = new ScramClientKeyCache();
  const computeSockets = new ComputeSockets(ctx.config.computeUnixSockets);
  const freezes = new Freezes(ctx.catalog, logger);
  const pools = new ServerPools(
    {
      catalog: ctx.catalog,
      coordinator: ctx.coordinator,
      routes,
      keys,
      computeSockets,
      logger,
      metrics,
      freezes,
      timeoutMs: ctx.config.wakeTimeoutMs,
      checkoutTimeoutMs: ctx.config.checkoutTimeoutMs,
      serverIdleTimeoutMs: ctx.config.serverIdleTimeoutMs,
    },
    ctx.coordinator,
    freezes,
    activity,
  );
  activity.sources = pools;
  metrics.sources.add(pools);
  metrics.activities.add(activity);
  const deps: GatewayDeps = {
    config: ctx.config,
    catalog: ctx.catalog,
    coordinator: ctx.coordinator,
    secrets: ctx.secrets,
    logger,
    metrics,
    tls,
    routes,
    keys,
    computeSockets,
    cancelKeys: new CancelKeys({ coordinator: ctx.coordinator, gatewayId, logger }),
    activity,
    freezes,
    pools,
    tokens: new TokenVerifier(ctx.config, ctx.catalog),
    limits: new ConnectionLimits(ctx.catalog, ctx.coordinator, gatewayId),
    lifetimes: new SessionLifetimes(ctx.metrics),
  };
  const stopPools = () => {
    metrics.sources.delete(pools);
    metrics.activities.delete(activity);
    pools.close();
    freezes.stop();
    deps.cancelKeys.stop();
  };
  let listener: Listener;
  try {
    listener = await listen(ctx.config.listenHost, ctx.config.gatewayPort, (socket) => serveClient(socket, deps), logger, ctx.config.maxClientsPerAddress, () => metrics.outcome('too_many_connections'));
  } catch (err) {
    stopPools();
    routes.close();
    await activity.stop();
    throw new Error(`gateway: cannot listen on ${ctx.config.listenHost}:${ctx.config.gatewayPort}: ${(err as Error).message}`);
  }
  logger.info({ host: ctx.config.listenHost, port: listener.port, tls_cert: tls.certFile }, 'gateway listening');
  return {
    port: listener.port,
    gatewayId,
    async stop() {
      await listener.close();
      stopPools();
      deps.lifetimes.stop();
      await activity.stop();
      routes.close();
    },
  };
}
