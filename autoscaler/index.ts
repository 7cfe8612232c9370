import type { RoleContext, RunningRole } from '../core/index.js';

export type AutoscalerRole = RunningRole;

/** Serves control requests (provision, wake, suspend, delete), suspends idle dbs, drives computes. */
export async function startAutoscaler(ctx: RoleContext): Promise<AutoscalerRole> {
  void ctx;
  throw new Error('autoscaler: under construction');
}
