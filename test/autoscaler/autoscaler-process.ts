/**
 * An autoscaler in a process of its own, for the failover test to kill. It wakes
 * HANDOFF_DB, asks for HANDOFF_TO, and stops (prints `REACHED <point>` and waits
 * forever) when its handoff reaches HANG_AT. Settings come from the environment
 * like `pgwake autoscaler`, with the test's catalog in CATALOG_URL. Only core and
 * the autoscaler are loaded: this is the autoscaler role alone.
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
  type ProfileName,
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
  handoffHooks: {
    async at(point) {
      if (point !== hangAt) return;
      process.stdout.write(`REACHED ${point}\n`);
      await new Promise(() => {});
    },
  },
});
const dbId = process.env.HANDOFF_DB!;
await ctx.coordinator.requestControl({ action: 'wake', dbId }, 60_000);
await ctx.catalog.dbs.update(dbId, { target_profile: process.env.HANDOFF_TO as ProfileName }, { states: ['running'], scaleStates: ['STABLE'] });
process.stdout.write('ASKED\n');
