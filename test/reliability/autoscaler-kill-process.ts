/**
 * An autoscaler in a process of its own, for autoscaler-kill.test.ts to SIGKILL.
 * It wakes KILL_DB (and with KILL_ACTION=suspend then suspends it) and stops
 * (prints `REACHED <point>` and waits forever) when the controller reaches
 * HANG_AT. Settings come from the environment like `pgwake autoscaler`, with
 * the test's catalog in CATALOG_URL.
 */
import { startAutoscaler } from '../../autoscaler/index.js';
import {
  Catalog,
  createLogger,
  createMetricsRegistry,
  InProcessCoordinator,
  loadConfig,
  loadOrCreateSecretKey,
  postgresBinDir,
  processOwnerFor,
  SecretBox,
  type RoleContext,
} from '../../core/index.js';

const config = loadConfig();
const coordinator = new InProcessCoordinator();
const ctx: RoleContext = {
  config,
  catalog: await Catalog.open(config.catalogUrl!, coordinator),
  coordinator,
  secrets: new SecretBox(loadOrCreateSecretKey(config.secretKey, config.dataDir)),
  logger: createLogger(config.logLevel, 'pgwake-test-child'),
  metrics: createMetricsRegistry(),
  binDir: postgresBinDir(config.pgBin),
  owner: processOwnerFor(config.computeOsUser),
};
const hangAt = process.env.HANG_AT;
await startAutoscaler(ctx, {
  controlHooks: {
    async at(point) {
      if (point !== hangAt) return;
      process.stdout.write(`REACHED ${point}\n`);
      await new Promise(() => {});
    },
  },
});
const dbId = process.env.KILL_DB!;
await ctx.coordinator.requestControl({ action: 'wake', dbId }, 60_000);
if (process.env.KILL_ACTION === 'suspend') await ctx.coordinator.requestControl({ action: 'suspend', dbId }, 60_000);
