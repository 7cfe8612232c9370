import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadSampler, processTreeCpuTicks } from '../../autoscaler/index.js';
import { INTERNAL_SUPERUSER } from '../../core/index.js';
import { dbRow, waitFor, type TenantDb } from './fixtures.js';
import { HandoffStack, LedgerLoad } from './handoff-support.js';

describe('autoscaler: the scaling policy at work on a running db', () => {
  let s: HandoffStack;
  let t: TenantDb;

  beforeAll(async () => {
    s = await HandoffStack.start({ PGWAKE_AUTOSCALE_INTERVAL_MS: '200', PGWAKE_AUTOSCALE_UP_WINDOW_SECONDS: '2', PGWAKE_AUTOSCALE_DOWN_WINDOW_SECONDS: '3' });
    t = await s.runningDb({ poolMode: 'transaction' });
  });
  afterAll(async () => {
    await s?.destroy();
  });

  it('samples the writer: CPU of the postmaster and its backends from /proc, sessions from pg_stat_activity', async () => {
    const writer = s.autoscaler.describeCompute(t.db.id);
    const sampler = new LoadSampler(s.stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER));
    try {
      expect(await sampler.sample(t.db.id, writer, undefined)).toBeNull(); // CPU is a rate: the first look only marks
      const before = (await processTreeCpuTicks(writer.pid!))!;
      const c = await LedgerLoad.connect(s, t, await dbRow(s.stack, t.db.id));
      await c.query('SELECT count(*) FROM generate_series(1, 3000000)'); // a backend's CPU, reaped or alive, counts
      const sample = (await sampler.sample(t.db.id, writer, { clientConnections: 1, checkoutsInFlight: 1, openTransactions: 0, lastActivityAt: Date.now(), checkoutsWaiting: 2 }))!;
      // Read while the backend is alive: one that just exited is neither listed nor yet reaped into the postmaster's children time.
      expect((await processTreeCpuTicks(writer.pid!))! - before).toBeGreaterThan(5);
      await c.end();
      expect(sample.cpuCores).toBeGreaterThan(0);
      expect(sample).toMatchObject({ connections: 1, checkoutsInFlight: 1, checkoutsWaiting: 2 });
    } finally {
      sampler.close();
    }
  });

  it('with no limits set, load moves nothing', async () => {
    const load = await LedgerLoad.start(s, t, 1);
    load.checkoutsWaiting = 5;
    await load.report();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await dbRow(s.stack, t.db.id)).toMatchObject({ scale_state: 'STABLE', current_profile: 'L1', target_profile: 'L1' });
    await load.stop();
  });

  it('checkouts waiting scale it up fast, never past max_profile; quiet scales it down after the window', async () => {
    await s.stack.ctx.catalog.dbs.update(t.db.id, { min_profile: 'L1', max_profile: 'L2' });
    const load = await LedgerLoad.start(s, t, 2);
    load.checkoutsWaiting = 5;
    await load.report();
    const up = await waitFor('scaled up to L2', async () => {
      const db = await dbRow(s.stack, t.db.id);
      return db.scale_state === 'STABLE' && db.current_profile === 'L2' ? db : null;
    }, 30_000);
    expect(up.writer_term).toBe(2);
    const requested = (await s.stack.ctx.catalog.events.since(t.accountId, 0, 10_000)).filter((e) => e.db_id === t.db.id && e.type === 'db.scale.requested');
    expect(requested.map((e) => (e.data as { target_profile: string }).target_profile)).toEqual(['L2']);
    // Still under pressure, but L2 is the limit: it stays.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await dbRow(s.stack, t.db.id)).toMatchObject({ current_profile: 'L2', scale_state: 'STABLE' });

    // Quiet: nothing waits, and a trickle of commits leaves the CPU all but idle.
    load.checkoutsWaiting = 0;
    load.paceMs = 100;
    await load.report();
    const down = await waitFor('scaled down to L1', async () => {
      const db = await dbRow(s.stack, t.db.id);
      return db.scale_state === 'STABLE' && db.current_profile === 'L1' ? db : null;
    }, 30_000);
    expect(down.writer_term).toBe(3);
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.missing).toBe(0);
    const metrics = await s.stack.ctx.metrics.getSingleMetricAsString('pgwake_scale_decisions_total');
    expect(metrics).toMatch(/direction="up"} 1/);
    expect(metrics).toMatch(/direction="down"} 1/);
  });

  it('a db below min_profile moves up to it with no load at all, and stays there', async () => {
    await s.stack.ctx.catalog.dbs.update(t.db.id, { min_profile: 'L2', max_profile: 'L4' });
    const db = await waitFor('at min_profile', async () => {
      const row = await dbRow(s.stack, t.db.id);
      return row.scale_state === 'STABLE' && row.current_profile === 'L2' ? row : null;
    }, 30_000);
    expect(db.target_profile).toBe('L2');
    await new Promise((r) => setTimeout(r, 3500)); // a full quiet down window
    expect(await dbRow(s.stack, t.db.id)).toMatchObject({ current_profile: 'L2', scale_state: 'STABLE' });
  });
});
