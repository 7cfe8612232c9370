import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ControlRequestError, giveTo, INTERNAL_SUPERUSER, randomId, type RoleContext, type RunningRole } from '../core/index.js';
import type { ComputeStatus } from './compute-driver.js';
import { ComputeTemplate } from './compute-template.js';
import { ControlLease } from './control-lease.js';
import { ComputeController, type ControlHooks } from './controller.js';
import { SCALE_FAILURE, type HandoffHooks } from './handoff.js';
import { IdleSuspender } from './idle-suspender.js';
import { LocalComputeDriver } from './local-compute-driver.js';
import { AutoscalerMetrics } from './metrics.js';
import { PeriodicReconcile, reconcile } from './reconcile.js';
import { Scaler } from './scaler.js';
import { prepareTemplateDatabase } from './tenant-database.js';

export type { ComputeDriver, ComputeEndpoint, ComputeExit, ComputeSpec, ComputeStatus } from './compute-driver.js';
export { LocalComputeDriver } from './local-compute-driver.js';
export { ComputeTemplate } from './compute-template.js';
export { createTenantDatabase, TEMPLATE_DATABASE } from './tenant-database.js';
export { FAILURE, type ControlHooks, type ControlPoint } from './controller.js';
export { SCALE_FAILURE, CANCELLABLE_STAGES, HANDOFF_STAGES, type HandoffHooks, type HandoffPoint, type HandoffHookInfo } from './handoff.js';
export { decideScale, type LoadSample, type ScaleDecision, type ScalePolicyInput } from './scale-policy.js';
export { waitForFreezeBarrier } from './freeze-barrier.js';
export { LoadSampler, processTreeCpuTicks } from './load-signals.js';

export interface AutoscalerRole extends RunningRole {
  /** What the driver knows of a db's writer (its pid, port, since when). */
  describeCompute(dbId: string): ComputeStatus;
  /** The same of a handoff's candidate writer. */
  describeCandidate(dbId: string): ComputeStatus;
  /** The fencing epoch this autoscaler writes (`dbs.lease_control_epoch`). */
  readonly epoch: number;
}

export interface AutoscalerOptions {
  /** Who holds the autoscaler lease (default: host, pid and a random id). */
  holder?: string;
  /** Fault injection for tests: called at each step of every handoff. */
  handoffHooks?: HandoffHooks;
  /** Fault injection for tests: called mid-wake and mid-suspend (controller.ts ControlPoint). */
  controlHooks?: ControlHooks;
}

/**
 * Once it holds the autoscaler lease: serves control requests (provision, wake,
 * suspend, delete) with the local compute driver, suspends idle dbs, moves
 * running ones between profiles (handoffs, by PATCH or by the scaling policy),
 * and keeps the catalog in line with the writers that really run, handoffs a
 * dead autoscaler left half-done included. stop() rolls back handoffs under way
 * and suspends every writer, so a restart finds them.
 */
export async function startAutoscaler(ctx: RoleContext, options: AutoscalerOptions = {}): Promise<AutoscalerRole> {
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
  const driver = new LocalComputeDriver({ computesDir, binDir: ctx.binDir, owner: ctx.owner, template, host: '127.0.0.1', startTimeoutMs: ctx.config.computeStartTimeoutMs, logger: ctx.logger, superuserPassword });
  let acting: ControlLease | undefined; // what the metrics read: undefined while this autoscaler stands by
  const metrics = new AutoscalerMetrics(ctx.metrics, {
    liveDbs: () => ctx.catalog.dbs.listLive(),
    runningComputes: () => driver.running().length,
    lease: () => acting && { held: acting.held, epoch: acting.epoch },
    perDbLimit: ctx.config.metricsPerDbLimit,
  });

  // Nothing is acted on before this autoscaler is the acting one.
  let scaler: Scaler | undefined;
  // Control requests are served only while the lease is held: one that lost it (paused, cut off from Redis) leaves them to the new holder.
  let serving: (() => void) | undefined;
  let serve: () => void = () => undefined;
  const lease = await ControlLease.acquire(
    ctx,
    options.holder ?? `${os.hostname()}/${process.pid}/${randomId('as', 6)}`,
    () => {
      serving?.();
      serving = undefined;
      scaler?.abortAll(SCALE_FAILURE.controllerFailover);
    },
    undefined,
    () => serve(),
  );
  acting = lease;
  // Made ahead, so the first db's provision only copies it; only by the lease holder, since a standby may share the computes directory.
  const templateReady = template.ensure().catch((err: Error) => log.error({ err }, 'compute template failed; provisions will retry it'));
  const epoch = () => lease.epoch;
  const controller = new ComputeController(ctx, driver, metrics, epoch, options.controlHooks);
  scaler = new Scaler(ctx, driver, controller, metrics, epoch, options.handoffHooks);
  const stopWatchingExits = driver.onExit((exit) => void controller.computeExited(exit).catch((err: Error) => log.error({ err, db_id: exit.dbId }, 'could not record a compute exit')));

  const recoverHandoff = (dbId: string) => scaler!.recover(dbId);
  await reconcile(ctx, driver, controller, { startup: true, recoverHandoff });
  serve = () => {
    serving ??= ctx.coordinator.serveControlRequests((req) => {
      // Popped just as the lease ran out: the fenced writes would fail anyway; say so before acting on any compute.
      if (!lease.held) return Promise.reject(new ControlRequestError('this autoscaler lost its lease while taking the request; ask again', 'failed'));
      return controller.handle(req);
    });
  };
  serve();
  const stopServing = () => {
    serve = () => undefined;
    serving?.();
    serving = undefined;
  };
  const idle = new IdleSuspender(ctx, driver, controller);
  idle.start();
  const periodic = new PeriodicReconcile(ctx, driver, controller, undefined, recoverHandoff);
  periodic.start();
  scaler.start();
  log.info({ driver: driver.kind, computes_dir: computesDir, lease_control_epoch: lease.epoch }, 'autoscaler started');

  return {
    describeCompute: (dbId) => driver.describe(dbId),
    describeCandidate: (dbId) => driver.describeCandidate(dbId),
    get epoch() {
      return lease.epoch;
    },
    async stop() {
      stopServing();
      await scaler!.stop();
      await idle.stop();
      await periodic.stop();
      await controller.shutdown();
      stopWatchingExits();
      await lease.release();
      await templateReady;
      log.info('autoscaler stopped');
    },
  };
}
