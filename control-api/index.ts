import type { RoleContext, RunningRole } from '../core/index.js';

export interface ControlApiRole extends RunningRole {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
}

/** The fastify app on `PGWAKE_HTTP_PORT`: /v2 routes, SSE events, OpenAPI, /metrics. */
export async function startControlApi(ctx: RoleContext): Promise<ControlApiRole> {
  void ctx;
  throw new Error('control-api: under construction');
}
