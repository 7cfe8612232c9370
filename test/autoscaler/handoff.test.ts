import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROFILES, type DbRecord, type ProfileName } from '../../core/index.js';
import { dbRow, type TenantDb } from './fixtures.js';
import { HandoffStack, LedgerLoad, writersUnder } from './handoff-support.js';

const iso = (s: string | null) => (s === null ? null : Date.parse(s));

describe('autoscaler: profile handoff under a write load', () => {
  let s: HandoffStack;
  let t: TenantDb;

  beforeAll(async () => {
    s = await HandoffStack.start();
    t = await s.runningDb();
  });
  afterAll(async () => {
    await s?.destroy();
  });

  it('describe shows every field with its real value at every stage; every change is an event', async () => {
    const before = await dbRow(s.stack, t.db.id);
    expect(before).toMatchObject({ scale_state: 'STABLE', current_profile: 'L1', target_profile: 'L1', writer_term: 1, candidate_profile: null, freeze_new_checkouts: false, lease_control_epoch: s.autoscaler.epoch });
    const seen = new Map<string, DbRecord>();
    s.hook = async (point) => {
      seen.set(point, await dbRow(s.stack, t.db.id));
    };
    const load = await LedgerLoad.start(s, t, 4);
    const t0 = Date.now();
    await s.requestProfile(t.db.id, 'L2');
    const after = await s.settled(t.db.id);
    const result = await load.stop();
    s.hook = undefined;

    const epoch = s.autoscaler.epoch;
    const stage = (p: string) => seen.get(p)!;
    // PREPARING: the candidate is named, its writer term is the next one, no worker yet.
    expect(stage('PREPARING')).toMatchObject({ scale_state: 'PREPARING', current_profile: 'L1', target_profile: 'L2', candidate_profile: 'L2', candidate_writer_term: 2, candidate_worker_id: null, writer_term: 1, freeze_new_checkouts: false, lease_control_epoch: epoch, scale_failure_reason: null });
    const prep = stage('PREPARING');
    expect(iso(prep.scale_phase_deadline_at)! - iso(prep.scale_phase_started_at)!).toBe(s.stack.config.handoffPrepareTimeoutMs);
    expect(iso(prep.scale_phase_started_at)!).toBeGreaterThanOrEqual(t0 - 1000);
    // CATCHING_UP: the candidate runs (its worker id is the process the driver reports).
    const catching = stage('CATCHING_UP');
    expect(catching).toMatchObject({ scale_state: 'CATCHING_UP', candidate_profile: 'L2', candidate_writer_term: 2, freeze_new_checkouts: false, writer_term: 1 });
    expect(catching.candidate_worker_id).toMatch(/^local\/.+\/\d+$/);
    expect(catching.candidate_worker_id).not.toBe(catching.worker_id);
    expect(iso(catching.scale_phase_deadline_at)! - iso(catching.scale_phase_started_at)!).toBe(s.stack.config.handoffCatchupTimeoutMs);
    // FROZEN: new checkouts frozen under a new generation.
    const frozen = stage('FROZEN');
    expect(frozen).toMatchObject({ scale_state: 'FROZEN', freeze_new_checkouts: true, freeze_generation: before.freeze_generation + 1, writer_term: 1, current_profile: 'L1' });
    expect(iso(frozen.scale_phase_deadline_at)! - iso(frozen.scale_phase_started_at)!).toBe(s.stack.config.handoffDrainTimeoutMs);
    // CUTOVER: still frozen while the old writer is fenced; then the route, term and profile switch together with the freeze lifted.
    expect(stage('CUTOVER')).toMatchObject({ scale_state: 'CUTOVER', freeze_new_checkouts: true, writer_term: 1, current_profile: 'L1', compute_port: before.compute_port });
    expect(stage('adopted')).toMatchObject({ scale_state: 'CUTOVER', freeze_new_checkouts: true, writer_term: 1 });
    // STABLE: the new profile, the next writer term, candidate fields cleared, a cooldown set.
    expect(after).toMatchObject({ scale_state: 'STABLE', current_profile: 'L2', target_profile: 'L2', size: 'L2', writer_term: 2, candidate_profile: null, candidate_worker_id: null, candidate_writer_term: null, freeze_new_checkouts: false, scale_failure_reason: null, scale_phase_deadline_at: null, lease_control_epoch: epoch, state: 'running' });
    expect(after.worker_id).toBe(catching.candidate_worker_id);
    expect(after.compute_port).not.toBe(before.compute_port);
    // The new writer's socket is published with its port, in the candidate's data directory.
    expect(after.compute_socket_path).toBe(path.join(s.stack.dataDir, 'computes', t.db.id, 'data.t2', 'socket', `.s.PGSQL.${after.compute_port}`));
    expect(after.autoscale_cooldown_until).not.toBeNull();

    // The event stream has every step, in order, each carrying the row as it was.
    const events = (await s.stack.ctx.catalog.events.since(t.accountId, 0, 10_000)).filter((e) => e.db_id === t.db.id && e.type.startsWith('db.scale.'));
    expect(events.map((e) => e.type)).toEqual(['db.scale.preparing', 'db.scale.candidate_started', 'db.scale.catching_up', 'db.scale.frozen', 'db.scale.cutover', 'db.scale.route_switched', 'db.scale.stable']);
    const routeSwitched = events.find((e) => e.type === 'db.scale.route_switched')!.data as unknown as DbRecord;
    expect(routeSwitched).toMatchObject({ scale_state: 'CUTOVER', freeze_new_checkouts: false, writer_term: 2, current_profile: 'L2' });

    // The new writer runs at the new profile's settings; the old one is gone with its data directory.
    const admin = new pg.Client({ host: after.compute_host!, port: after.compute_port!, user: 'pgwake_admin', password: s.stack.ctx.secrets.internalRolePassword('pgwake_admin'), database: 'postgres' });
    await admin.connect();
    const settings = await admin.query<{ max_connections: string; recovery: boolean; conninfo: string }>("SELECT current_setting('max_connections') AS max_connections, pg_is_in_recovery() AS recovery, current_setting('primary_conninfo') AS conninfo");
    await admin.end();
    expect(settings.rows[0]).toEqual({ max_connections: PROFILES.L2.postgresSettings.max_connections, recovery: false, conninfo: '' });
    expect(await s.computeDirEntries(t.db.id)).toEqual(['current', 'data.t2']);
    expect(await writersUnder(path.join(s.stack.dataDir, 'computes', t.db.id))).toEqual([s.autoscaler.describeCompute(t.db.id).pid]);

    expect(result.missing).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.acknowledged).toBeGreaterThan(0);
  });

  // Ten in each pool mode through the real gateway: handoff-gateway.test.ts. Here the contract alone, with a test gateway.
  it('handoffs up and down under the load: every acknowledged commit is there, no client error, one writer', async () => {
    const load = await LedgerLoad.start(s, t, 8);
    const path_: ProfileName[] = ['L1', 'L4', 'L2', 'L1'];
    let term = (await dbRow(s.stack, t.db.id)).writer_term;
    const counts: number[] = [];
    for (const to of path_) {
      const before = load.acknowledged;
      await s.requestProfile(t.db.id, to);
      const db = await s.settled(t.db.id);
      expect(db).toMatchObject({ scale_state: 'STABLE', current_profile: to, writer_term: term + 1, state: 'running' });
      term++;
      counts.push(load.acknowledged - before);
      // Only the writer of the current term runs: one postmaster for the db.
      expect(await writersUnder(path.join(s.stack.dataDir, 'computes', t.db.id))).toHaveLength(1);
    }
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.missing).toBe(0);
    expect(result.acknowledged).toBeGreaterThan(50);
    expect(await s.computeDirEntries(t.db.id)).toEqual(['current', `data.t${term}`]);
    // Usage: each profile the writer ran at is its own interval; a cutover closes one and opens the next.
    const { rows } = await s.stack.ctx.catalog.pool.query<{ profile: string; ended: boolean }>('SELECT profile, ended_at IS NOT NULL AS ended FROM usage WHERE db_id = $1 ORDER BY started_at, id', [t.db.id]);
    expect(rows.map((r) => r.profile)).toEqual(['L1', 'L2', ...path_]);
    expect(rows.map((r) => r.ended)).toEqual([...rows.slice(1).map(() => true), false]);
  }, 240_000);

  it('after handoffs the db suspends and wakes from the adopted data directory at its profile, with every row', async () => {
    const db = await dbRow(s.stack, t.db.id);
    await s.stack.ctx.coordinator.requestControl({ action: 'suspend', dbId: t.db.id }, 30_000);
    await s.stack.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 30_000);
    const woke = await dbRow(s.stack, t.db.id);
    expect(woke).toMatchObject({ state: 'running', current_profile: db.current_profile, writer_term: db.writer_term });
    const c = await LedgerLoad.connect(s, t, woke);
    const n = (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger')).rows[0]!.n;
    expect(Number((await c.query<{ m: string }>("SELECT current_setting('max_connections') AS m")).rows[0]!.m)).toBe(Number(PROFILES[db.current_profile].postgresSettings.max_connections));
    await c.end();
    expect(n).toBeGreaterThan(50);
  });
});
