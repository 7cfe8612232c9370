import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbActivity } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, waitFor, type TenantDb } from './fixtures.js';

const quiet: DbActivity = { clientConnections: 0, checkoutsInFlight: 0, openTransactions: 0, lastActivityAt: 0 };

describe('autoscaler: idle suspend', () => {
  let stack: TestStack;
  const wake = (t: TenantDb) => stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 30_000);
  const provisioned = async (o: Parameters<typeof createTenantDb>[1]) => {
    const t = await createTenantDb(stack, o);
    await stack.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 30_000);
    return t;
  };
  /** Reports `activity` for the db every 100 ms, as a gateway does, for `ms`. */
  const reportFor = async (gatewayId: string, t: TenantDb, activity: Partial<DbActivity>, ms: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await stack.ctx.coordinator.reportActivity({ gatewayId, dbs: { [t.db.id]: { ...quiet, lastActivityAt: Date.now(), ...activity } } }, 500);
      await sleep(100);
    }
  };

  beforeAll(async () => {
    stack = await startTestStack({ PGWAKE_IDLE_CHECK_INTERVAL_MS: '100' }, ['autoscaler']);
  });
  afterAll(async () => {
    await stack?.destroy();
  });

  it('suspends a db nobody uses once its suspend_timeout_seconds passed, not before', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 2 });
    await wake(t);
    const wokeAt = Date.now();
    await sleep(1_200);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    const db = await waitFor('idle suspend', async () => {
      const d = await dbRow(stack, t.db.id);
      return d.state === 'suspended' ? d : null;
    });
    expect(Date.now() - wokeAt).toBeGreaterThanOrEqual(2_000);
    expect(db).toMatchObject({ current_scale: 0, target_scale: 0, compute_port: null });
    expect(stack.autoscaler!.describeCompute(t.db.id).running).toBe(false);
    expect(await stack.ctx.metrics.getSingleMetricAsString('pgwake_suspends_total')).toMatch(/reason="idle"\} [1-9]/);
  });

  it('an open transaction keeps the db running however long it is idle; it suspends after the transaction ends', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 1 });
    await wake(t);
    // Idle in transaction, no checkout in flight and (transaction mode) nothing else: still activity.
    await reportFor('gw-a', t, { openTransactions: 1, lastActivityAt: 0 }, 2_500);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await stack.ctx.coordinator.reportActivity({ gatewayId: 'gw-a', dbs: { [t.db.id]: { ...quiet } } }, 60_000);
    const endedAt = Date.now();
    await waitFor('idle suspend', async () => (await dbRow(stack, t.db.id)).state === 'suspended');
    expect(Date.now() - endedAt).toBeGreaterThanOrEqual(700); // a full timeout after the last busy sighting, give or take a check interval
  });

  it('a connected session client keeps a session-mode db running', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 1, poolMode: 'session' });
    await wake(t);
    await reportFor('gw-b', t, { clientConnections: 1, lastActivityAt: 0 }, 2_000);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await stack.ctx.coordinator.reportActivity({ gatewayId: 'gw-b', dbs: {} }, 60_000);
    await waitFor('idle suspend', async () => (await dbRow(stack, t.db.id)).state === 'suspended');
  });

  it('in transaction mode an idle client connection does not hold the db up; a checkout in flight does', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 1, poolMode: 'transaction' });
    await wake(t);
    await reportFor('gw-c', t, { checkoutsInFlight: 1, clientConnections: 1, lastActivityAt: 0 }, 2_000);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await stack.ctx.coordinator.reportActivity({ gatewayId: 'gw-c', dbs: { [t.db.id]: { ...quiet, clientConnections: 3 } } }, 60_000);
    await waitFor('idle suspend', async () => (await dbRow(stack, t.db.id)).state === 'suspended');
  });

  it('recent traffic (lastActivityAt) counts as activity', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 1, poolMode: 'transaction' });
    await wake(t);
    await reportFor('gw-d', t, {}, 2_000); // quiet counters, fresh lastActivityAt every 100 ms
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await stack.ctx.coordinator.reportActivity({ gatewayId: 'gw-d', dbs: {} }, 60_000);
    await waitFor('idle suspend', async () => (await dbRow(stack, t.db.id)).state === 'suspended');
  });

  it('a suspended db wakes again after an idle suspend', async () => {
    const t = await provisioned({ suspendTimeoutSeconds: 60 });
    await wake(t);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await stack.ctx.coordinator.requestControl({ action: 'suspend', dbId: t.db.id }, 30_000);
    await wake(t);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
  });
});
