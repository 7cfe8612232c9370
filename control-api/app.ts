import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RoleContext } from '../core/index.js';
import { decorateCaller, requireApiKey } from './caller.js';
import { TenantDeletions } from './deletion.js';
import { installErrorHandlers } from './errors.js';
import { measureRequests } from './http-metrics.js';
import { KeyUseLog } from './key-use.js';
import { openApiRoutes, registerOpenApi } from './openapi.js';
import { AccountSchema, accountRoutes } from './routes/accounts.js';
import { dbPowerRoutes } from './routes/db-power.js';
import { DbSchema } from './routes/db-schemas.js';
import { dbRoutes } from './routes/dbs.js';
import { eventRoutes, OpenEventStreams } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { CredentialsSchema, TenantSchema } from './routes/tenant-schemas.js';
import { tenantRoutes } from './routes/tenants.js';
import { ErrorBodySchema } from './schemas.js';

export interface ControlApiOptions {
  /** Comment line sent on idle event streams so proxies and clients keep them open. */
  eventHeartbeatMs?: number;
  /** How often API key use is written to `api_keys.last_used_at`. */
  keyUseFlushMs?: number;
  /** Largest request body accepted (413 above). */
  bodyLimitBytes?: number;
}

export interface ControlApp {
  app: FastifyInstance;
  /** Ends what the app keeps running besides its server: event streams, key-use writes, deletion watches. */
  shutdown(): Promise<void>;
}

/** The fastify app: one plugin per route group, the routes needing an API key in their own scope. */
export async function buildControlApp(ctx: RoleContext, options: ControlApiOptions = {}): Promise<ControlApp> {
  const app = Fastify({
    loggerInstance: ctx.logger.child({ role: 'control-api' }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    // Refuse what the schema does not allow rather than repair it: no silent dropping of unknown
    // fields, no "5" taken for 5, and every problem of a request reported at once.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  });
  const keyUse = new KeyUseLog(ctx.catalog.accounts, ctx.logger, options.keyUseFlushMs ?? 30_000);
  const streams = new OpenEventStreams(ctx);
  const deletions = new TenantDeletions(ctx);

  installErrorHandlers(app);
  decorateCaller(app);
  measureRequests(app, ctx.metrics);
  for (const schema of [ErrorBodySchema, DbSchema, TenantSchema, CredentialsSchema, AccountSchema]) app.addSchema(schema);
  await registerOpenApi(app);

  await app.register(healthRoutes, { ctx });
  await app.register(openApiRoutes);
  await app.register(accountRoutes, { ctx });
  await app.register(async (withKey) => {
    requireApiKey(withKey, ctx.catalog, keyUse);
    await withKey.register(tenantRoutes, { ctx, deletions });
    await withKey.register(dbRoutes, { ctx, deletions });
    await withKey.register(dbPowerRoutes, { ctx });
    await withKey.register(eventRoutes, { ctx, streams, heartbeatMs: options.eventHeartbeatMs ?? 15_000 });
  });
  // Streams never end by themselves: end them before the server waits for its connections.
  app.addHook('preClose', async () => streams.closeAll());

  return {
    app,
    async shutdown() {
      deletions.stop();
      await keyUse.stop();
    },
  };
}
