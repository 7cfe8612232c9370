/**
 * An autoscaler in a process of its own, for autoscaler-kill.test.ts to SIGKILL.
 * It wakes KILL_DB (and with KILL_ACTION=suspend then suspends it) and stops
 * (prints `REACHED <point>` and waits forever) when the controller reaches
 * HANG_AT. Settings come from the environment like `pgwake autoscaler`, with
 * the test's catalog in CATALOG_URL.
 */
import { startAutoscaler } from '../../autoscaler/index.js';
import { childAutoscalerContext, hangAtNamedPoint } from '../support/child-autoscaler.js';

const ctx = await childAutoscalerContext();
await startAutoscaler(ctx, {
  controlHooks: {
    at: hangAtNamedPoint,
  },
});
const dbId = process.env.KILL_DB!;
await ctx.coordinator.requestControl({ action: 'wake', dbId }, 60_000);
if (process.env.KILL_ACTION === 'suspend') await ctx.coordinator.requestControl({ action: 'suspend', dbId }, 60_000);
