import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAutoscaler, type AutoscalerRole, type HandoffPoint } from '../../autoscaler/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { killChildAutoscalerAt } from '../support/child-autoscaler.js';
import { connectAsTenant, createTenantDb, dbRow, waitFor, type TenantDb } from './fixtures.js';
import { HANDOFF_TEST_ENV, writersUnder } from './handoff-support.js';

/** Runs an autoscaler in its own process until its handoff of `dbId` reaches `point`, then kills it (SIGKILL): what it ran keeps running. */
function killAutoscalerAt(stack: TestStack, dbId: string, point: HandoffPoint): Promise<void> {
  const env = { ...HANDOFF_TEST_ENV, PGWAKE_DATA_DIR: stack.dataDir, CATALOG_URL: stack.catalogUrl, HANDOFF_DB: dbId, HANDOFF_TO: 'L2' };
  return killChildAutoscalerAt('test/autoscaler/autoscaler-process.ts', env, point, 60_000);
}

describe('autoscaler: killed mid-handoff, the next one finishes or rolls back what it finds', () => {
  let stack: TestStack;
  let autoscaler: AutoscalerRole | undefined;
  let t: TenantDb;
  const computeDir = () => path.join(stack.dataDir, 'computes', t.db.id);

  beforeAll(async () => {
    // A 2 s cooldown keeps the recovered FAILED readable before it turns STABLE again.
    stack = await startTestStack({ ...HANDOFF_TEST_ENV, PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '2' }, []);
    t = await createTenantDb(stack);
    // A first autoscaler makes the db and its rows, then stops (the db suspends).
    const first = await startAutoscaler(stack.ctx);
    await stack.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 60_000);
    await stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 60_000);
    const c = await connectAsTenant(stack, t);
    await c.query('CREATE TABLE kept AS SELECT g AS v FROM generate_series(1, 500) g');
    await c.end();
    await first.stop();
  });
  afterAll(async () => {
    await autoscaler?.stop().catch(() => undefined);
    await stack?.destroy();
  });

  async function rowsAfterWake(): Promise<number> {
    await stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 60_000);
    const c = await connectAsTenant(stack, t);
    const n = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM kept')).rows[0]!.n;
    await c.end();
    return n;
  }

  it('killed in CATCHING_UP: the next autoscaler rolls back (FAILED controller_failover), stops what the dead one ran, and the db serves', async () => {
    await killAutoscalerAt(stack, t.db.id, 'CATCHING_UP');
    const left = await dbRow(stack, t.db.id);
    expect(left).toMatchObject({ scale_state: 'CATCHING_UP', state: 'running', candidate_profile: 'L2' });
    expect(await writersUnder(computeDir())).toHaveLength(2); // the dead autoscaler's writer and candidate still run

    autoscaler = await startAutoscaler(stack.ctx);
    expect(autoscaler.epoch).toBeGreaterThan(left.lease_control_epoch);
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ scale_state: 'FAILED', scale_failure_reason: 'controller_failover', state: 'suspended', current_profile: 'L1', writer_term: 1, freeze_new_checkouts: false, candidate_worker_id: null, compute_port: null, lease_control_epoch: autoscaler.epoch });
    expect(await writersUnder(computeDir())).toEqual([]);
    const entries = await import('node:fs/promises').then((fs) => fs.readdir(computeDir()));
    expect(entries.sort()).toEqual(['data']);
    expect(await rowsAfterWake()).toBe(500);
    // After its cooldown (2 s here) the db is STABLE again and may be handed off anew.
    await waitFor('STABLE', async () => (await dbRow(stack, t.db.id)).scale_state === 'STABLE');
    expect(await dbRow(stack, t.db.id)).toMatchObject({ target_profile: 'L1', candidate_profile: null, scale_failure_reason: null });
    await autoscaler.stop();
    autoscaler = undefined;
  });

  it('killed after the candidate was adopted, before the catalog heard: the next autoscaler finishes the handoff', async () => {
    await killAutoscalerAt(stack, t.db.id, 'adopted');
    const left = await dbRow(stack, t.db.id);
    expect(left).toMatchObject({ scale_state: 'CUTOVER', freeze_new_checkouts: true, writer_term: 1, candidate_writer_term: 2 });

    autoscaler = await startAutoscaler(stack.ctx);
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ scale_state: 'STABLE', current_profile: 'L2', target_profile: 'L2', writer_term: 2, freeze_new_checkouts: false, candidate_profile: null, state: 'suspended' });
    expect(await writersUnder(computeDir())).toEqual([]);
    const entries = await import('node:fs/promises').then((fs) => fs.readdir(computeDir()));
    expect(entries.sort()).toEqual(['current', 'data.t2']);
    // The replication credential the candidate streamed with is gone from its configuration.
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(path.join(computeDir(), 'data.t2', 'postgresql.auto.conf'), 'utf8')).not.toMatch(/primary_conninfo|password/);
    expect(await rowsAfterWake()).toBe(500);
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'running', current_profile: 'L2', writer_term: 2 });
  });

  it('a stale autoscaler moves nothing: with a newer epoch on the db its writes fail and it starts no handoff', async () => {
    const newer = autoscaler!.epoch + 1000;
    // What a newer leader's first write leaves on the row.
    await stack.ctx.catalog.dbs.update(t.db.id, { lease_control_epoch: newer });
    await expect(stack.ctx.coordinator.requestControl({ action: 'suspend', dbId: t.db.id }, 30_000)).rejects.toThrow(/newer autoscaler/);
    await stack.ctx.catalog.dbs.update(t.db.id, { target_profile: 'L4' }, { scaleStates: ['STABLE'] });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'running', scale_state: 'STABLE', current_profile: 'L2', target_profile: 'L4', lease_control_epoch: newer, writer_term: 2 });
    expect(autoscaler!.describeCandidate(t.db.id).running).toBe(false);
  });
});
