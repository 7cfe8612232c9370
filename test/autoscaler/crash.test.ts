import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { connectAsTenant, createTenantDb, dbRow, postmastersUnder, waitFor, type TenantDb } from './fixtures.js';

describe('autoscaler: a compute that dies', () => {
  let stack: TestStack;
  let t: TenantDb;
  const control = (action: 'provision' | 'wake' | 'suspend') => stack.ctx.coordinator.requestControl({ action, dbId: t.db.id }, 30_000);

  beforeAll(async () => {
    stack = await startTestStack({}, ['autoscaler']);
    t = await createTenantDb(stack);
    await control('provision');
    await control('wake');
  });
  afterAll(async () => {
    await stack?.destroy();
  });

  it('kill -9 of the writer: the db says failed (compute_exited), the next wake brings it back with every commit', async () => {
    const client = await connectAsTenant(stack, t);
    await client.query('CREATE TABLE ledger (id serial PRIMARY KEY, amount int)');
    await client.query('INSERT INTO ledger (amount) SELECT g FROM generate_series(1, 1000) g');
    // A commit right before the kill: only WAL has it, no checkpoint does.
    await client.query('INSERT INTO ledger (amount) VALUES (424242)');
    client.on('error', () => undefined); // the server goes away under it
    const { pid } = stack.autoscaler!.describeCompute(t.db.id);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');

    const failed = await waitFor('db failed', async () => {
      const db = await dbRow(stack, t.db.id);
      return db.state === 'failed' ? db : null;
    });
    expect(failed).toMatchObject({ failure_reason: 'compute_exited', current_scale: 0, compute_host: null, compute_port: null, worker_id: null });
    expect(stack.autoscaler!.describeCompute(t.db.id).running).toBe(false);
    await client.end().catch(() => undefined);
    expect(await stack.ctx.metrics.getSingleMetricAsString('pgwake_compute_unexpected_exits_total')).toMatch(/ 1$/m);

    await control('wake');
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'running', failure_reason: null, current_scale: 1 });
    const again = await connectAsTenant(stack, t);
    try {
      const { rows } = await again.query<{ n: number; top: number }>('SELECT count(*)::int AS n, max(amount) AS top FROM ledger');
      expect(rows[0]).toEqual({ n: 1001, top: 424242 });
    } finally {
      await again.end();
    }
    const dataDir = path.join(stack.dataDir, 'computes', t.db.id);
    expect(await postmastersUnder(dataDir)).toEqual([stack.autoscaler!.describeCompute(t.db.id).pid]);
  });

  it('a suspend of a failed db leaves it suspended with nothing running', async () => {
    process.kill(stack.autoscaler!.describeCompute(t.db.id).pid!, 'SIGKILL');
    await waitFor('db failed', async () => (await dbRow(stack, t.db.id)).state === 'failed');
    await control('suspend');
    expect(await dbRow(stack, t.db.id)).toMatchObject({ state: 'suspended', failure_reason: null, current_scale: 0 });
    expect(await postmastersUnder(path.join(stack.dataDir, 'computes', t.db.id))).toEqual([]);
  });
});
