import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RoleContext } from '../core/index.js';
import { AccountDeletions } from './account-deletion.js';
import { decorateCaller, requireApiKey } from './caller.js';
import { TenantDeletions } from './deletion.js';
import { installErrorHandlers } from './errors.js';
import { measureRequests } from './http-metrics.js';
import { IdempotencyKeys } from './idempotency.js';
import { KeyUseLog } from './key-use.js';
import { openApiRoutes, registerOpenApi } from './openapi.js';
import { RateLimits } from './rate-limits.js';
import { accountSelfRoutes } from './routes/account.js';
import { AccountSchema, accountRoutes } from './routes/accounts.js';
import { ApiKeySchema } from './routes/api-key-schemas.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { billingRoutes } from './routes/billing.js';
import { accessRoutes } from './routes/access.js';
import { credentialRoutes, jwksRoutes } from './routes/credentials.js';
import { RoleSchema } from './routes/role-schemas.js';
import { roleRoutes } from './routes/roles.js';
import { CredentialSigner } from './credential-signer.js';
import { dbPowerRoutes } from './routes/db-power.js';
import { scaleRoutes } from './routes/scale.js';
import { DbDescribeSchema, DbSchema } from './routes/db-schemas.js';
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

const ACCOUNT_SWEEP_INTERVAL_MS = 5 * 60 * 1000;

/** The fastify app: one plugin per route group, the routes needing an API key in their own scope. */
export async function buildControlApp(ctx: RoleContext, options: ControlApiOptions = {}): Promise<ControlApp> {
  const app = Fastify({
    loggerInstance: ctx.logger.child({ role: 'control-api' }) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    // Refuse what the schema does not allow rather than repair it: no silent dropping of unknown
    // fields, no "5" taken for 5, and every problem of a request reported at once.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    // Behind a load balancer the client's address is in X-Forwarded-For: per-address limits count it.
    trustProxy: ctx.config.trustProxy,
  });
  const keyUse = new KeyUseLog(ctx.catalog.accounts, ctx.logger, options.keyUseFlushMs ?? 30_000);
  const streams = new OpenEventStreams(ctx);
  const deletions = new TenantDeletions(ctx);
  const accountDeletions = new AccountDeletions(ctx, deletions);
  const idempotency = new IdempotencyKeys(ctx);
  const signer = new CredentialSigner(ctx);

  installErrorHandlers(app);
  decorateCaller(app);
  measureRequests(app, ctx.metrics);
  for (const schema of [ErrorBodySchema, DbSchema, DbDescribeSchema, TenantSchema, CredentialsSchema, AccountSchema, ApiKeySchema, RoleSchema]) app.addSchema(schema);
  await registerOpenApi(app);
  const limits = await RateLimits.install(app, ctx.config, ctx.metrics);
  app.addHook('onRequest', limits.byAddress());

  await app.register(healthRoutes, { ctx });
  await app.register(openApiRoutes);
  await app.register(jwksRoutes, { signer });
  await app.register(accountRoutes, { ctx, signUpLimit: limits.signUpsByAddress() });
  await app.register(async (withKey) => {
    // Counted before the key is checked: a flood on one key costs no catalog lookups.
    withKey.addHook('onRequest', limits.byApiKey());
    requireApiKey(withKey, ctx.catalog, keyUse);
    idempotency.apply(withKey);
    await withKey.register(accountSelfRoutes, { ctx, deletions: accountDeletions });
    await withKey.register(apiKeyRoutes, { ctx });
    await withKey.register(billingRoutes, { ctx });
    await withKey.register(tenantRoutes, { ctx, deletions });
    await withKey.register(dbRoutes, { ctx, deletions });
    await withKey.register(dbPowerRoutes, { ctx });
    await withKey.register(scaleRoutes, { ctx });
    await withKey.register(roleRoutes, { ctx });
    await withKey.register(accessRoutes, { ctx });
    await withKey.register(credentialRoutes, { ctx, signer });
    await withKey.register(eventRoutes, { ctx, streams, heartbeatMs: options.eventHeartbeatMs ?? 15_000 });
  });
  // Streams never end by themselves: end them before the server waits for its connections.
  app.addHook('preClose', async () => streams.closeAll());
  // Account deletions a stopped process left half done, now and now and then (a request that
  // was in flight at the deletion may have made a tenant after the sweep).
  const sweep = () => void accountDeletions.resumeUnfinished().catch((err: Error) => ctx.logger.warn({ err: err.message }, 'account deletion sweep failed'));
  sweep();
  const sweeps = setInterval(sweep, ACCOUNT_SWEEP_INTERVAL_MS);
  sweeps.unref();

  return {
    app,
    async shutdown() {
      clearInterval(sweeps);
      idempotency.stop();
      deletions.stop();
      await keyUse.stop();
    },
  };
}
