import type { RoleContext, RunningRole } from '../core/index.js';

export interface GatewayRole extends RunningRole {
  port: number;
}

/** Raw TCP Postgres gateway on `PGWAKE_GATEWAY_PORT`. */
export async function startGateway(ctx: RoleContext): Promise<GatewayRole> {
  void ctx;
  throw new Error('gateway: under construction');
}
