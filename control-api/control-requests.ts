import { ControlRequestError, type ControlAction, type RoleContext } from '../core/index.js';
import { ApiError } from './errors.js';

/**
 * How long the API waits for the autoscaler per action. A wake is bounded like
 * the gateway's; creating a data directory and removing one may take longer.
 */
export function controlTimeoutMs(ctx: RoleContext, action: ControlAction): number {
  switch (action) {
    case 'wake':
      return ctx.config.wakeTimeoutMs;
    case 'suspend':
      return Math.max(ctx.config.computeStartTimeoutMs, 30_000);
    case 'provision':
    case 'delete':
      return Math.max(ctx.config.computeStartTimeoutMs * 3, 60_000);
    case 'sync_roles':
      // Quick on a running compute, but it waits its turn behind a start or a handoff.
      return Math.max(ctx.config.computeStartTimeoutMs, 30_000);
  }
}

/** Asks the autoscaler to act on a db and waits; its failures become API errors. */
export async function requestControl(ctx: RoleContext, action: ControlAction, dbId: string): Promise<void> {
  try {
    await ctx.coordinator.requestControl({ action, dbId }, controlTimeoutMs(ctx, action));
  } catch (err) {
    throw controlError(action, dbId, err);
  }
}

export function controlError(action: ControlAction, dbId: string, err: unknown): ApiError {
  if (err instanceof ControlRequestError) {
    switch (err.code) {
      case 'no_autoscaler':
        return new ApiError(503, 'autoscaler_unavailable', `cannot ${action} db ${dbId}: no autoscaler is running`, { db_id: dbId, action });
      case 'timeout':
        return new ApiError(504, 'control_timeout', `${action} of db ${dbId} did not finish in time; it may still finish`, { db_id: dbId, action });
      case 'failed':
        return new ApiError(502, 'control_failed', `${action} of db ${dbId} failed: ${err.message}`, { db_id: dbId, action });
    }
  }
  return new ApiError(502, 'control_failed', `${action} of db ${dbId} failed`, { db_id: dbId, action });
}
