import type { AddressInfo } from 'node:net';
import type { RoleContext, RunningRole } from '../core/index.js';
import { buildControlApp, type ControlApiOptions } from './app.js';

export type { ControlApiOptions } from './app.js';
export type { ErrorBody } from './errors.js';

export interface ControlApiRole extends RunningRole {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
}

/**
 * The control API on `PGWAKE_LISTEN_HOST:PGWAKE_HTTP_PORT` (port 0: the OS
 * picks, and `port` says which): /v2 routes, SSE events, /openapi.json,
 * /healthz, /metrics.
 */
export async function startControlApi(ctx: RoleContext, options: ControlApiOptions = {}): Promise<ControlApiRole> {
  const { app, shutdown } = await buildControlApp(ctx, options);
  try {
    await app.listen({ host: ctx.config.listenHost, port: ctx.config.httpPort });
  } catch (err) {
    await shutdown();
    await app.close();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const host = ctx.config.listenHost.includes(':') ? `[${ctx.config.listenHost}]` : ctx.config.listenHost;
  const url = `http://${host}:${port}`;
  ctx.logger.info({ url }, 'control API listening');
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    stop() {
      stopping ??= app.close().then(shutdown);
      return stopping;
    },
  };
}
