import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { giveTo, INTERNAL_SUPERUSER, type RoleContext, type RunningRole } from '../core/index.js';
import type { ComputeStatus } from './compute-driver.js';
import { ComputeTemplate } from './compute-template.js';
import { ComputeController } from './controller.js';
import { IdleSuspender } from './idle-suspender.js';
import { LocalComputeDriver } from './local-compute-driver.js';
import { AutoscalerMetrics } from './metrics.js';
import { PeriodicReconcile, reconcile } from './reconcile.js';
import { prepareTemplateDatabase } from './tenant-database.js';

export type { ComputeDriver, ComputeEndpoint, ComputeExit, ComputeSpec, ComputeStatus } from './compute-driver.js';
export { LocalComputeDriver } from './local-compute-driver.js';
export { ComputeTemplate } from './compute-template.js';
export { createTenantDatabase, TEMPLATE_DATABASE } from './tenant-database.js';
export { FAILURE } from './controller.js';

export interface AutoscalerRole extends RunningRole {
  /** What the driver knows of a db's writer (its pid, port, since when). */
  describeCompute(dbId: string): ComputeStatus;
}

/**
 * Serves control requests (provision, wake, suspend, delete) with the local
 * compute driver, suspends idle dbs, and keeps the catalog in line with the
 * writers that really run. stop() suspends every writer, so a restart finds them.
 */
export async function startAutoscaler(ctx: RoleContext): Promise<AutoscalerRole> {
  const log = ctx.logger.child({ component: 'autoscaler' });
  const computesDir = path.join(ctx.config.dataDir, 'computes');
  await mkdir(computesDir, { recursive: true });
  await giveTo(ctx.owner, computesDir);
  const superuserPassword = ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER);
  const template = new ComputeTemplate({
    computesDir,
    binDir: ctx.binDir,
    owner: ctx.owner,
    superuserPassword,
    startTimeoutMs: ctx.config.computeStartTimeoutMs,
    prepare: (endpoint) => prepareTemplateDatabase(endpoint, superuserPassword),
    onCreated: (t) => log.info({ initdb_ms: Math.round(t.initdbMs), prepare_ms: Math.round(t.prepareMs) }, 'compute template created'),
  });
  // Made ahead, so the first db's provision only copies it.
  const templateReady = template.ensure().catch((err: Error) => log.error({ err }, 'compute template failed; provisions will retry it'));
  const driver = new LocalComputeDriver({ computesDir, binDir: ctx.binDir, owner: ctx.owner, template, host: '127.0.0.1', startTimeoutMs: ctx.config.computeStartTimeoutMs, logger: ctx.logger });
  const metrics = new AutoscalerMetrics(ctx.metrics, { liveDbs: () => ctx.catalog.dbs.listLive(), runningComputes: () => driver.running().length });
  const controller = new ComputeController(ctx, driver, metrics);
  const stopWatchingExits = driver.onExit((exit) => void controller.computeExited(exit).catch((err: Error) => log.error({ err, db_id: exit.dbId }, 'could not record a compute exit')));

  await reconcile(ctx, driver, controller, { startup: true });
  const stopServing = ctx.coordinator.serveControlRequests((req) => controller.handle(req));
  const idle = new IdleSuspender(ctx, driver, controller);
  idle.start();
  const periodic = new PeriodicReconcile(ctx, driver, controller);
  periodic.start();
  log.info({ driver: driver.kind, computes_dir: computesDir }, 'autoscaler started');

  return {
    describeCompute: (dbId) => driver.describe(dbId),
    async stop() {
      stopServing();
      await idle.stop();
      await periodic.stop();
      await controller.shutdown();
      stopWatchingExits();
      await templateReady;
      log.info('autoscaler stopped');
    },
  };
}
