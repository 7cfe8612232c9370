import { createLogger, loadConfig, type Config } from '../core/index.js';
import { startStack, type RoleName, type Stack } from './stack.js';

const USAGE = `pgwake — serverless Postgres

Usage:
  pgwake start            every role in one process, embedded catalog (the default)
  pgwake gateway          the gateway only        (needs REDIS_URL and CATALOG_URL;
                          PGWAKE_GATEWAY_WORKERS=N runs N gateways on one port)
  pgwake autoscaler       the autoscaler only     (needs REDIS_URL and CATALOG_URL)
  pgwake control-api      the control API only    (needs REDIS_URL and CATALOG_URL)
  pgwake bench [--quick] [scenario…]
                          benchmarks side by side with direct Postgres and PgBouncer
  pgwake tenants create|list …
  pgwake dbs create|list|describe|delete …
  pgwake credentials <tenant>
                          the control API for people (PGWAKE_API_URL, PGWAKE_API_KEY);
                          \`pgwake dbs --help\` says more
  pgwake help             this text

Settings come from the environment (see the README's table).`;

const ROLES: Record<string, RoleName[]> = {
  start: ['autoscaler', 'gateway', 'control-api'],
  gateway: ['gateway'],
  autoscaler: ['autoscaler'],
  'control-api': ['control-api'],
};

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'help';
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  const cli = await import('../cli/index.js');
  if (cli.handles(command)) return cli.runCli(argv);
  if (command === 'bench') {
    const { runBench } = await import('../bench/cli.js');
    return runBench(argv.slice(1));
  }
  const roles = ROLES[command];
  if (!roles) {
    console.error(`pgwake: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`pgwake: bad setting: ${(err as Error).message}`);
    return 2;
  }
  if (command !== 'start' && (!config.redisUrl || !config.catalogUrl)) {
    // One role per process shares state through Redis and an external catalog; without them
    // the roles could not see each other. `pgwake start` runs them together in-process.
    console.error(`pgwake ${command}: running one role per process needs REDIS_URL and CATALOG_URL; use \`pgwake start\` to run everything in one process.`);
    return 2;
  }
  if (command !== 'start' && !config.secretKey) {
    // Each process would otherwise make its own key: gateways could not log in to computes the autoscaler made.
    console.error(`pgwake ${command}: running one role per process needs PGWAKE_SECRET_KEY, the same on every process (64 hex characters: \`openssl rand -hex 32\`).`);
    return 2;
  }
  if (config.gatewayWorkers > 1 && command !== 'gateway') {
    console.error(`pgwake ${command}: PGWAKE_GATEWAY_WORKERS=${config.gatewayWorkers} is for \`pgwake gateway\` (with REDIS_URL); \`pgwake start\` runs one gateway in its one process.`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  if (config.gatewayWorkers > 1) {
    const { runGatewayCluster } = await import('./gateway-cluster.js');
    return runGatewayCluster(config, logger);
  }
  let stack: Stack;
  try {
    stack = await startStack(config, roles, logger);
  } catch (err) {
    logger.fatal({ err }, 'pgwake could not start');
    return 1;
  }
  const host = config.listenHost;
  const lines = [
    stack.controlApi && `control API  ${stack.controlApi.url}  (OpenAPI: ${stack.controlApi.url}/openapi.json)`,
    stack.gateway && `gateway      postgres://${host}:${stack.gateway.port}  (clients use ${config.gatewayHost}:${config.gatewayPort})`,
    stack.metricsPort !== undefined && `metrics      http://${host}:${stack.metricsPort}/metrics`,
    `catalog      ${config.catalogUrl ? 'external (CATALOG_URL)' : `embedded, data in ${config.dataDir}`}`,
  ].filter(Boolean);
  console.log(`pgwake is up:\n  ${lines.join('\n  ')}\nCtrl-C stops everything.`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn('second signal: exiting without a clean stop');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      stack.stop().then(resolve, (err: Error) => {
        logger.error({ err }, 'stop failed');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  console.log('pgwake stopped.');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
