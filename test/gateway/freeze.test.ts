import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, INTERNAL_SUPERUSER, PostgresServer, type DbRecord } from '../../core/index.js';
import type { TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, dsn, gatewayReport, metricsText, pgClient, sample, setPool, startGatewayStack, waitFor, type TenantDb } from './support.js';

const sh = promisify(execFile);

/**
 * The freeze as the autoscaler's handoff drives it (DESIGN §3 FROZEN/CUTOVER):
 * set and lifted here by hand, with the same compare-and-set writes on the db row.
 */
let stack: TestStack;
const extraServers: PostgresServer[] = [];

beforeAll(async () => {
  stack = await startGatewayStack({ PGWAKE_CHECKOUT_TIMEOUT_MS: '500' });
});

afterAll(async () => {
  for (const s of extraServers) await s.stop('immediate').catch(() => undefined);
  await stack?.destroy();
});

/** Sets the freeze the way the handoff does: the next generation, a deadline, guarded by the fencing epoch. */
async function freeze(t: TenantDb, deadlineMs = 30_000): Promise<DbRecord> {
  const db = await dbRow(stack, t.db.id);
  const frozen = await stack.ctx.catalog.dbs.update(
    db.id,
    { freeze_new_checkouts: true, freeze_generation: db.freeze_generation + 1, scale_phase_deadline_at: new Date(Date.now() + deadlineMs).toISOString() },
    { epoch: db.lease_control_epoch, states: ['running'] },
  );
  if (!frozen) throw new Error('the freeze write lost its compare-and-set');
  return frozen;
}

async function lift(t: TenantDb, route: Partial<DbRecord> = {}): Promise<DbRecord> {
  const db = await dbRow(stack, t.db.id);
  const lifted = await stack.ctx.catalog.dbs.update(db.id, { freeze_new_checkouts: false, scale_phase_deadline_at: null, ...route }, { epoch: db.lease_control_epoch });
  if (!lifted) throw new Error('the lift write lost its compare-and-set');
  return lifted;
}

const settled = <T>(p: Promise<T>) => {
  const state = { done: false };
  void p.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};

async function running(t: TenantDb): Promise<void> {
  const c = pgClient(stack, t);
  await c.connect();
  await c.query('select 1');
  await c.end();
}

describe('transaction mode', () => {
  it('holds new checkouts past the checkout timeout, lets the one in flight finish, reports at once, serves the held ones at the lift', async () => {
    const t = await createTenantDb(stack);
    await setPool(stack, t, 'transaction', 2);
    await running(t);
    const a = pgClient(stack, t);
    const b = pgClient(stack, t);
    await Promise.all([a.connect(), b.connect()]);
    await a.query('begin');
    await a.query('select 1');

    const frozen = await freeze(t);
    await waitFor('the freeze acknowledged with one checkout in flight', async () => {
      const r = await gatewayReport(stack, t.db.id);
      return r?.freezeGeneration === frozen.freeze_generation && r.checkoutsInFlight === 1;
    }, 1_000, 5);

    const held = b.query<{ n: number }>('select 42 as n');
    const heldState = settled(held);
    await new Promise((r) => setTimeout(r, 1_200)); // beyond the 500 ms checkout timeout
    expect(heldState.done).toBe(false);
    expect((await gatewayReport(stack, t.db.id))?.checkoutsWaiting).toBe(1);

    // The checkout already out runs to its end; the barrier hears of it at once, not on the next tick.
    expect((await a.query<{ n: number }>('select 2 as n')).rows[0]!.n).toBe(2);
    await a.query('commit');
    const committedAt = Date.now();
    await waitFor('zero in flight reported', async () => (await gatewayReport(stack, t.db.id))?.checkoutsInFlight === 0, 1_000, 2);
    expect(Date.now() - committedAt).toBeLessThan(300);
    expect(sample(await metricsText(stack), 'pgwake_gateway_frozen_dbs')).toBe(1);

    await lift(t);
    expect((await held).rows[0]!.n).toBe(42);
    await waitFor('the freeze no longer reported', async () => (await gatewayReport(stack, t.db.id))?.freezeGeneration === null, 1_000, 5);
    expect(sample(await metricsText(stack), 'pgwake_gateway_freeze_seconds_count')).toBeGreaterThanOrEqual(1);
    await Promise.all([a.end(), b.end()]);
  });

  it('is idempotent by generation: a late freeze of a lifted generation, or a repeat, changes nothing', async () => {
    const t = await createTenantDb(stack);
    await setPool(stack, t, 'transaction', 2);
    await running(t);
    const c = pgClient(stack, t);
    await c.connect();
    const frozen = await freeze(t);
    const repeat = { ...frozen };
    stack.ctx.coordinator.publishDbChanged({ db: repeat }); // the same freeze again
    const lifted = await lift(t);
    // The freeze message arrives again, late, after its lift: ignored.
    stack.ctx.coordinator.publishDbChanged({ db: frozen });
    const r = await Promise.race([c.query<{ n: number }>('select 1 as n').then((x) => x.rows[0]!.n), new Promise((res) => setTimeout(() => res('held'), 1_000))]);
    expect(r).toBe(1);
    expect((await gatewayReport(stack, t.db.id))?.freezeGeneration ?? null).toBe(null);
    // A lift for a newer generation ends an older freeze that is still held.
    const again = await freeze(t);
    stack.ctx.coordinator.publishDbChanged({ db: { ...lifted, freeze_new_checkouts: false, freeze_generation: again.freeze_generation + 5 } });
    const r2 = await Promise.race([c.query<{ n: number }>('select 2 as n').then((x) => x.rows[0]!.n), new Promise((res) => setTimeout(() => res('held'), 1_000))]);
    expect(r2).toBe(2);
    await lift(t);
    await c.end();
  });

  it('fails a held checkout with a retryable SQLSTATE at the handoff deadline; the connection stays open', async () => {
    const t = await createTenantDb(stack);
    await setPool(stack, t, 'transaction', 2);
    await running(t);
    const c = pgClient(stack, t);
    await c.connect();
    await freeze(t, 800);
    const started = Date.now();
    const err = await c.query('select 1').then(() => null, (e: { code: string; message: string }) => e);
    expect(err?.code).toBe('40001');
    expect(err?.message).toMatch(/handoff/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    await lift(t);
    expect((await c.query<{ n: number }>('select 3 as n')).rows[0]!.n).toBe(3);
    await c.end();
  });
});

describe('moving to a new writer', () => {
  /** A second Postgres holding the same data: a copy of the compute's data dir, taken while frozen, started on its own port (and Unix socket). */
  async function secondWriter(t: TenantDb): Promise<{ port: number; server: PostgresServer }> {
    const db = await dbRow(stack, t.db.id);
    const su = new pg.Client({ host: db.compute_host!, port: db.compute_port!, user: INTERNAL_SUPERUSER, password: stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), database: db.name });
    await su.connect();
    const dataDir = (await su.query<{ d: string }>("select current_setting('data_directory') as d")).rows[0]!.d;
    await su.query('checkpoint');
    await su.end();
    const copy = path.join(stack.dataDir, `copy-${t.db.id}`);
    await sh('cp', ['-a', dataDir, copy]);
    await rm(path.join(copy, 'postmaster.pid'), { force: true });
    await rm(path.join(copy, 'socket'), { recursive: true, force: true });
    const port = await freePort();
    const server = await PostgresServer.start({ binDir: stack.ctx.binDir, dataDir: copy, host: '127.0.0.1', port, owner: stack.ctx.owner, startTimeoutMs: 30_000 });
    extraServers.push(server);
    return { port, server };
  }

  it('pgbench in transaction mode through a freeze and a move to another Postgres: zero errors, every held transaction served there', async () => {
    const t = await createTenantDb(stack);
    await setPool(stack, t, 'transaction', 4);
    const url = dsn(stack, t);
    await sh('/usr/bin/pgbench', ['-i', '-s', '1', '-q', url]);
    const bench = sh('/usr/bin/pgbench', ['-S', '-c', '12', '-j', '2', '-T', '6', '-n', url]);
    await new Promise((r) => setTimeout(r, 1_500));
    const frozen = await freeze(t);
    await waitFor('the barrier: generation applied, nothing in flight', async () => {
      const r = await gatewayReport(stack, t.db.id);
      return r?.freezeGeneration === frozen.freeze_generation && r.checkoutsInFlight === 0;
    }, 5_000, 5);
    const { port, server } = await secondWriter(t);
    // The report read at the barrier may predate the clients' next transactions; the held queue fills as they arrive.
    const waiting = await waitFor('clients held by the freeze', async () => (await gatewayReport(stack, t.db.id))?.checkoutsWaiting || undefined, 3_000, 20);
    const moved = await lift(t, { compute_port: port, compute_socket_path: server.unixSocketPath, writer_term: frozen.writer_term + 1 });
    expect(moved.compute_port).toBe(port);
    const { stdout } = await bench;
    expect(waiting).toBeGreaterThan(0);
    expect(stdout).toMatch(/number of failed transactions: 0 /);
    expect(Number(/number of transactions actually processed: (\d+)/.exec(stdout)![1])).toBeGreaterThan(100);
    // After the lift every transaction ran on the new writer.
    const c = pgClient(stack, t);
    await c.connect();
    expect((await c.query<{ port: number }>("select current_setting('port')::int as port")).rows[0]!.port).toBe(port);
    await c.end();
  }, 60_000);

  it('session mode: a session mid-transaction finishes first; idle sessions move with their SETs and prepared statements', async () => {
    const t = await createTenantDb(stack);
    await running(t);
    const idle = pgClient(stack, t, { application_name: 'moving-app' });
    const busy = pgClient(stack, t);
    await Promise.all([idle.connect(), busy.connect()]);
    await idle.query("set work_mem = '9MB'");
    await idle.query('set search_path = pg_catalog, public');
    await idle.query('prepare by_sql(int) as select $1 + 100 as n');
    const named = { name: 'moved-stmt', text: 'select $1::int * 11 as n', values: [3] };
    expect((await idle.query(named)).rows[0]!.n).toBe(33);
    const oldPort = (await idle.query<{ port: number }>("select current_setting('port')::int as port")).rows[0]!.port;
    await busy.query('begin');
    await busy.query('create table if not exists moved_marker(i int)');

    const frozen = await freeze(t);
    await waitFor('the freeze applied, the open transaction in flight', async () => {
      const r = await gatewayReport(stack, t.db.id);
      return r?.freezeGeneration === frozen.freeze_generation && r.checkoutsInFlight === 1 && r.openTransactions === 1;
    }, 2_000, 5);
    const held = idle.query<{ port: number; wm: string; sp: string; app: string }>(
      "select current_setting('port')::int as port, current_setting('work_mem') as wm, current_setting('search_path') as sp, current_setting('application_name') as app",
    );
    const heldState = settled(held);
    await busy.query('insert into moved_marker values (1)');
    await busy.query('commit');
    await waitFor('nothing in flight', async () => (await gatewayReport(stack, t.db.id))?.checkoutsInFlight === 0, 2_000, 5);
    expect(heldState.done).toBe(false);

    const { port, server } = await secondWriter(t);
    await lift(t, { compute_port: port, compute_socket_path: server.unixSocketPath, writer_term: frozen.writer_term + 1 });
    const after = (await held).rows[0]!;
    expect(after).toEqual({ port, wm: '9MB', sp: 'pg_catalog, public', app: 'moving-app' });
    expect(port).not.toBe(oldPort);
    expect((await idle.query(named)).rows[0]!.n).toBe(33);
    expect((await idle.query<{ n: number }>('execute by_sql(5)')).rows[0]!.n).toBe(105);
    // The session that was mid-transaction moved too, once its transaction was over; its commit is on the new writer.
    expect((await busy.query<{ port: number; n: number }>("select current_setting('port')::int as port, count(*)::int as n from moved_marker")).rows[0]).toEqual({ port, n: 1 });
    await Promise.all([idle.end(), busy.end()]);
  }, 60_000);
});
