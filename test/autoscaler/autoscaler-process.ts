/**
 * An autoscaler in a process of its own, for the failover test to kill. It wakes
 * HANDOFF_DB, asks for HANDOFF_TO, and stops (prints `REACHED <point>` and waits
 * forever) when its handoff reaches HANG_AT. Settings come from the environment
 * like `pgwake autoscaler`, with the test's catalog in CATALOG_URL. Only core and
 * the autoscaler are loaded: this is the autoscaler role alone.
 */
import { startAutoscaler } from '../../autoscaler/index.js';
import type { ProfileName } from '../../core/index.js';
import { childAutoscalerContext, hangAtNamedPoint } from '../support/child-autoscaler.js';

const ctx = await childAutoscalerContext();
await startAutoscaler(ctx, {
  handoffHooks: {
    at: hangAtNamedPoint,
  },
});
const dbId = process.env.HANDOFF_DB!;
await ctx.coordinator.requestControl({ action: 'wake', dbId }, 60_000);
await ctx.catalog.dbs.update(dbId, { target_profile: process.env.HANDOFF_TO as ProfileName }, { states: ['running'], scaleStates: ['STABLE'] });
process.stdout.write('ASKED\n');
