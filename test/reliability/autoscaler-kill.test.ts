import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAutoscaler, type AutoscalerRole, type ControlPoint } from '../../autoscaler/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { killChildAutoscalerAt } from '../support/child-autoscaler.js';
import { connectAsTenant, createTenantDb, dbRow, type TenantDb } from '../autoscaler/fixtures.js';
import { writersUnder } from '../autoscaler/handoff-support.js';

/** Runs an autoscaler in its own process until its wake (or suspend) of `dbId` reaches `point`, then SIGKILLs it: the writer it started keeps running. */
function killAutoscalerAt(stack: TestStack, dbId: string, action: 'wake' | 'suspend', point: ControlPoint): Promise<void> {
  const env = { PGWAKE_DATA_DIR: stack.dataDir, CATALOG_URL: stack.catalogUrl, KILL_DB: dbId, KILL_ACTION: action };
  return killChildAutoscalerAt('test/reliability/autoscaler-kill-process.ts', env, point, 40_000);
}

describe('reliability: autoscaler killed -9 mid-wake and mid-suspend, a new one converges', () => {
  let stack: TestStack;
  let autoscaler: AutoscalerRole | undefined;
  let t: TenantDb;
  const computeDir = () => path.join(stack.dataDir, 'computes', t.db.id);

  beforeAll(async () => {
    stack = await startTestStack({}, []);
    t = await createTenantDb(stack);
    const first = await startAutoscaler(stack.ctx);
    await stack.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 60_000);
    await stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 60_000);
    const c = await connectAsTenant(stack, t);
    await c.query('CREATE TABLE kept AS SELECT g AS v FROM generate_series(1, 500) g');
    await c.end();
    await first.stop();
  }, 60_000);
  afterAll(async () => {
    await autoscaler?.stop().catch(() => undefined);
    await stack?.destroy();
  });

  /** Wakes through a new autoscaler, checks every committed row, and commits `more` rows. */
  async function wakeAndCount(more: number): Promise<number> {
    await stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 60_000);
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'running' });
    const c = await connectAsTenant(stack, t);
    const n = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM kept')).rows[0]!.n;
    await c.query('INSERT INTO kept SELECT g FROM generate_series(1, $1::int) g', [more]);
    await c.end();
    return n;
  }

  it('killed mid-wake (writer started, row `starting`): the next autoscaler stops the orphan, marks it suspended, and a wake serves every row', async () => {
    await killAutoscalerAt(stack, t.db.id, 'wake', 'wake:starting');
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'starting' });
    expect(await writersUnder(computeDir())).toHaveLength(1); // the dead autoscaler's writer still runs

    autoscaler = await startAutoscaler(stack.ctx);
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'suspended', compute_port: null, worker_id: null, lease_control_epoch: autoscaler.epoch });
    expect(await writersUnder(computeDir())).toEqual([]);
    expect(await wakeAndCount(100)).toBe(500);
    await autoscaler.stop();
    autoscaler = undefined;
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'suspended' });
  }, 60_000);

  it('killed mid-suspend (row `suspending`, writer not stopped): the next autoscaler stops it, marks it suspended, and a wake serves every row', async () => {
    await killAutoscalerAt(stack, t.db.id, 'suspend', 'suspend:suspending');
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'suspending' });
    expect(await writersUnder(computeDir())).toHaveLength(1);

    autoscaler = await startAutoscaler(stack.ctx);
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'suspended', compute_port: null, worker_id: null, lease_control_epoch: autoscaler.epoch });
    expect(await writersUnder(computeDir())).toEqual([]);
    expect(await wakeAndCount(0)).toBe(600);
    expect(await writersUnder(computeDir())).toHaveLength(1); // exactly the new one's writer
  }, 60_000);
});
