import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CANCELLABLE_STAGES } from '../../autoscaler/index.js';
import { freePort, type DbRecord } from '../../core/index.js';
import { dbRow, waitFor, type TenantDb } from './fixtures.js';
import { HandoffStack, LedgerLoad, writersUnder } from './handoff-support.js';

/** A gateway whose one checkout never returns: it applied the freeze but keeps a checkout in flight. */
async function stuckGateway(s: HandoffStack, dbId: string, generation: number | null): Promise<void> {
  await s.stack.ctx.coordinator.reportActivity(
    { gatewayId: 'stuck-gateway', dbs: { [dbId]: { clientConnections: 1, checkoutsInFlight: 1, openTransactions: 1, lastActivityAt: Date.now(), freezeGeneration: generation } } },
    generation === null ? 1 : 30_000,
  );
}

describe('autoscaler: a handoff that fails at each stage rolls back to a serving db', () => {
  let s: HandoffStack;
  let t: TenantDb;
  const computeDir = () => path.join(s.stack.dataDir, 'computes', t.db.id);

  beforeAll(async () => {
    // A 1 s cooldown keeps FAILED visible long enough to be read before it turns STABLE again.
    s = await HandoffStack.start({ PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '1' });
    t = await s.runningDb();
    const c = await LedgerLoad.connect(s, t, await dbRow(s.stack, t.db.id));
    await c.query('CREATE TABLE kept (v int)');
    await c.end();
  });
  afterAll(async () => {
    await s?.destroy();
  });
  /** Stage deadlines as the environment set them; a test shortens the one it lets pass. */
  let deadlines: Pick<typeof s.stack.config, 'handoffPrepareTimeoutMs' | 'handoffCatchupTimeoutMs' | 'handoffDrainTimeoutMs'>;
  beforeEach(async () => {
    deadlines ??= { handoffPrepareTimeoutMs: s.stack.config.handoffPrepareTimeoutMs, handoffCatchupTimeoutMs: s.stack.config.handoffCatchupTimeoutMs, handoffDrainTimeoutMs: s.stack.config.handoffDrainTimeoutMs };
    Object.assign(s.stack.config, deadlines);
    s.hook = undefined;
    await stuckGateway(s, t.db.id, null);
    await waitFor('STABLE', async () => (await dbRow(s.stack, t.db.id)).scale_state === 'STABLE');
  });

  /** The row as the handoff's FAILED write left it (read from its event: the cooldown may already have turned it STABLE). */
  async function failedRow(after: DbRecord): Promise<DbRecord> {
    return waitFor('db.scale.failed', async () => {
      const events = await s.stack.ctx.catalog.events.since(t.accountId, 0, 10_000);
      const failed = events.filter((e) => e.db_id === t.db.id && e.type === 'db.scale.failed').map((e) => e.data as unknown as DbRecord);
      const last = failed[failed.length - 1];
      return last && Date.parse(last.updated_at) >= Date.parse(after.updated_at) ? last : null;
    }, 60_000);
  }

  /** FAILED with `reason`, freeze lifted, the old writer serving every committed row, nothing of the candidate left; then STABLE again. */
  async function expectRolledBack(before: DbRecord, reason: string): Promise<DbRecord> {
    const failed = await failedRow(before);
    expect(failed).toMatchObject({
      state: 'running',
      scale_state: 'FAILED',
      scale_failure_reason: reason,
      freeze_new_checkouts: false,
      candidate_worker_id: null,
      current_profile: before.current_profile,
      writer_term: before.writer_term,
    });
    expect(failed.scale_phase_deadline_at).toBe(failed.autoscale_cooldown_until);
    const c = await LedgerLoad.connect(s, t, await dbRow(s.stack, t.db.id));
    await c.query('INSERT INTO kept VALUES (1)');
    await c.end();
    await waitFor('candidate torn down', async () => (await writersUnder(computeDir())).length === 1 && (await s.computeDirEntries(t.db.id)).every((e) => !e.startsWith('data.t') || e === currentDir(before)));
    expect(await writersUnder(computeDir())).toEqual([s.autoscaler.describeCompute(t.db.id).pid]);
    // The cooldown (1 s here) passes: STABLE again at the old profile, free to try again.
    const stable = await waitFor('STABLE after the cooldown', async () => {
      const db = await dbRow(s.stack, t.db.id);
      return db.scale_state === 'STABLE' ? db : null;
    });
    expect(stable).toMatchObject({ target_profile: before.current_profile, candidate_profile: null, candidate_writer_term: null, scale_failure_reason: null });
    return stable;
  }

  const currentDir = (db: DbRecord) => (db.writer_term === 1 ? 'data' : `data.t${db.writer_term}`);

  it('PREPARING: a candidate that never streams (it cannot reach its writer) fails with candidate_start_timeout', async () => {
    s.stack.config.handoffPrepareTimeoutMs = 5000;
    const before = await dbRow(s.stack, t.db.id);
    const nowhere = await freePort();
    s.hook = async (point, info) => {
      if (point !== 'candidate_copied') return;
      const conf = path.join(info.candidateDataDir!, 'postgresql.auto.conf');
      await writeFile(conf, (await readFile(conf, 'utf8')).replace(/port=\d+/, `port=${nowhere}`));
    };
    await s.requestProfile(t.db.id, 'L2');
    await expectRolledBack(before, 'candidate_start_timeout');
  });

  it('CATCHING_UP: a replica that never catches up fails with catchup_timeout, never promoted', async () => {
    s.stack.config.handoffCatchupTimeoutMs = 4000;
    const before = await dbRow(s.stack, t.db.id);
    s.hook = async (point, info) => {
      if (point === 'candidate_copied') {
        // The standby holds back every commit it receives: its replay stays behind.
        const conf = path.join(info.candidateDataDir!, 'postgresql.auto.conf');
        await writeFile(conf, `${await readFile(conf, 'utf8')}recovery_min_apply_delay = '1h'\n`);
      }
      if (point === 'CATCHING_UP') {
        // Commits and WAL segment switches put the writer a segment ahead of anything the candidate applied.
        const su = new pg.Client({ host: info.db.compute_host!, port: info.db.compute_port!, user: 'pgwake_admin', password: s.stack.ctx.secrets.internalRolePassword('pgwake_admin'), database: t.db.name });
        await su.connect();
        for (let i = 0; i < 2; i++) {
          await su.query('INSERT INTO kept VALUES (2)');
          await su.query('SELECT pg_switch_wal()');
        }
        await su.end();
      }
    };
    await s.requestProfile(t.db.id, 'L2');
    await expectRolledBack(before, 'catchup_timeout');
    const events = (await s.stack.ctx.catalog.events.since(t.accountId, 0, 10_000)).filter((e) => e.db_id === t.db.id).map((e) => e.type);
    // It never froze: the lagging candidate was not promoted.
    expect(events.slice(events.lastIndexOf('db.scale.preparing'))).toEqual(['db.scale.preparing', 'db.scale.candidate_started', 'db.scale.catching_up', 'db.scale.failed', 'db.scale.stable']);
  });

  it('FROZEN: a checkout that never returns fails with drain_timeout (rollback); new checkouts are free again', async () => {
    s.stack.config.handoffDrainTimeoutMs = 1500;
    const before = await dbRow(s.stack, t.db.id);
    let frozen: DbRecord | undefined;
    s.hook = async (point, info) => {
      if (point !== 'FROZEN') return;
      frozen = await dbRow(s.stack, t.db.id);
      await stuckGateway(s, t.db.id, info.db.freeze_generation);
    };
    await s.requestProfile(t.db.id, 'L2');
    await expectRolledBack(before, 'drain_timeout');
    expect(frozen).toMatchObject({ scale_state: 'FROZEN', freeze_new_checkouts: true, freeze_generation: before.freeze_generation + 1 });
    const { rows } = await s.stack.ctx.catalog.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE db_id = $1 AND type = 'db.scale.failed' AND (data->>'freeze_new_checkouts')::boolean = false`, [t.db.id]);
    expect(rows[0]!.n).toBeGreaterThan(0);
  });

  it('FROZEN with handoff_timeout_action=force: the blocking session ends with 57P01 (retryable) and the handoff cuts over', async () => {
    s.stack.config.handoffDrainTimeoutMs = 1500;
    await s.stack.ctx.catalog.dbs.update(t.db.id, { handoff_timeout_action: 'force' });
    const before = await dbRow(s.stack, t.db.id);
    // A client mid-transaction on the writer, as a session-mode checkout is.
    const blocker = await LedgerLoad.connect(s, t, before);
    const blockerError = new Promise<Error & { code?: string }>((resolve) => blocker.on('error', (err) => resolve(err)));
    await blocker.query('BEGIN');
    await blocker.query('INSERT INTO kept VALUES (4)');
    s.hook = async (point, info) => {
      if (point === 'FROZEN') await stuckGateway(s, t.db.id, info.db.freeze_generation);
      if (point === 'CUTOVER') await stuckGateway(s, t.db.id, null);
    };
    await s.requestProfile(t.db.id, 'L2');
    const after = await s.settled(t.db.id);
    expect(after).toMatchObject({ scale_state: 'STABLE', current_profile: 'L2', writer_term: before.writer_term + 1, freeze_new_checkouts: false });
    expect((await blockerError).code).toBe('57P01');
    await blocker.end().catch(() => undefined);
    const types = (await s.stack.ctx.catalog.events.since(t.accountId, 0, 10_000)).filter((e) => e.db_id === t.db.id).map((e) => e.type);
    expect(types).toContain('db.scale.drain_forced');
    const c = await LedgerLoad.connect(s, t, after);
    expect((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM kept WHERE v = 4')).rows[0]!.n).toBe(0); // never committed
    await c.end();
    await s.stack.ctx.catalog.dbs.update(t.db.id, { handoff_timeout_action: 'rollback' });
  });

  it('CUTOVER: a promote that fails (the candidate dies after the fence) restarts the old writer with every acknowledged commit', async () => {
    const before = await dbRow(s.stack, t.db.id);
    const load = await LedgerLoad.start(s, t, 4);
    await waitFor('some commits', async () => load.acknowledged > 20);
    s.hook = (point, info) => {
      if (point === 'fenced') process.kill(info.candidate.pid!, 'SIGKILL');
    };
    await s.requestProfile(t.db.id, 'L4');
    expect((await failedRow(before)).scale_failure_reason).toBe('promote_failed');
    await waitFor('more commits on the old writer', async () => load.acknowledged > 60);
    const result = await load.stop();
    expect(result.missing).toBe(0);
    expect(result.errors).toEqual([]);
    await expectRolledBack(before, 'promote_failed');
  });

  it('cancelled by the API before CUTOVER: FAILED cancelled; a cancel after CUTOVER is refused and the handoff finishes', async () => {
    const before = await dbRow(s.stack, t.db.id);
    // What POST /v2/dbs/:id/scale/cancel writes: the target back to the current profile, only in a cancellable stage.
    const cancel = () => s.stack.ctx.catalog.dbs.update(t.db.id, { target_profile: before.current_profile }, { scaleStates: CANCELLABLE_STAGES }, 'db.scale.cancel_requested');
    s.hook = async (point) => {
      if (point === 'CATCHING_UP') expect(await cancel()).not.toBeNull();
    };
    await s.requestProfile(t.db.id, 'L1');
    await expectRolledBack(before, 'cancelled');

    let refused: DbRecord | null | undefined;
    s.hook = async (point) => {
      if (point === 'CUTOVER') refused = await cancel();
    };
    await s.requestProfile(t.db.id, 'L1');
    const after = await s.settled(t.db.id);
    expect(refused).toBeNull();
    expect(after).toMatchObject({ scale_state: 'STABLE', current_profile: 'L1', writer_term: before.writer_term + 1 });
  });
});
