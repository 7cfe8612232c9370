import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_SUPERUSER, PROFILES } from '../../core/index.js';
import { ApiClient, expectError, fieldProblems } from '../control-api/client.js';
import { HandoffStack } from './handoff-support.js';

describe('control API: size and autoscaling limits by PATCH, cancel of a handoff', () => {
  let s: HandoffStack;
  let api: ApiClient;
  let id: string;
  const path = '/v2/tenants/shop/dbs/app';
  const describeDb = async () => (await api.get(`/v2/dbs/${id}`)).body;

  beforeAll(async () => {
    // A 2 s cooldown: the cancel's answer shows FAILED before it turns STABLE again.
    s = await HandoffStack.start({ PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '2' }, ['control-api']);
    api = await new ApiClient(s.stack.controlApi!.url).signUp('scale');
    expect((await api.post('/v2/tenants', { name: 'shop' })).status).toBe(201);
    const created = await api.post('/v2/tenants/shop/dbs', { name: 'app', start_immediately: true });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    id = created.body.id;
  });
  afterAll(async () => {
    await s?.destroy();
  });

  it('PATCH size of a running db hands it off; describe follows the stages to STABLE at the new size', async () => {
    const res = await api.patch(path, { size: 'L2' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ size: 'L2', target_profile: 'L2', current_profile: 'L1' });
    const db = await s.settled(id);
    expect(db).toMatchObject({ scale_state: 'STABLE', current_profile: 'L2', writer_term: 2 });
    expect(await describeDb()).toMatchObject({ scale_state: 'STABLE', current_profile: 'L2', target_profile: 'L2', size: 'L2', writer_term: 2, candidate_profile: null, min_profile: null, max_profile: null });
  });

  it('autoscaling limits are set together, the right way round, with the size inside them', async () => {
    expect(fieldProblems(await api.patch(path, { min_profile: 'L2' }))).toHaveProperty('max_profile');
    expect(fieldProblems(await api.patch(path, { min_profile: 'L4', max_profile: 'L2' }))).toHaveProperty('min_profile');
    expect(fieldProblems(await api.patch(path, { size: 'L8', min_profile: 'L1', max_profile: 'L4' }))).toHaveProperty('size');
    expect(fieldProblems(await api.patch(path, { size: 'L3' }))).toHaveProperty('size');
    const ok = await api.patch(path, { min_profile: 'L1', max_profile: 'L2', handoff_timeout_action: 'force' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ min_profile: 'L1', max_profile: 'L2', handoff_timeout_action: 'force', current_profile: 'L2' });
    const off = await api.patch(path, { min_profile: null, max_profile: null, handoff_timeout_action: 'rollback' });
    expect(off.body).toMatchObject({ min_profile: null, max_profile: null, handoff_timeout_action: 'rollback' });
  });

  it('a handoff under way: PATCH size is a 409, the cancel rolls it back (FAILED, cancelled) and answers with the describe', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    s.hook = async (point) => {
      if (point === 'CATCHING_UP') await held;
    };
    await api.patch(path, { size: 'L4' });
    const during = await (async () => {
      for (;;) {
        const d = await describeDb();
        if (d.scale_state === 'CATCHING_UP') return d;
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    expect(during).toMatchObject({ candidate_profile: 'L4', target_profile: 'L4' });
    expect(expectError(await api.patch(path, { size: 'L1' }), 409, 'conflict').details).toMatchObject({ scale_state: 'CATCHING_UP' });
    const cancelled = await api.post(`/v2/dbs/${id}/scale/cancel`);
    release();
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect(cancelled.body).toMatchObject({ scale_state: 'FAILED', scale_failure_reason: 'cancelled', current_profile: 'L2', target_profile: 'L2', freeze_new_checkouts: false, candidate_worker_id: null });
    s.hook = undefined;
    expect(expectError(await api.post(`/v2/dbs/${id}/scale/cancel`), 409, 'conflict').details).toMatchObject({ scale_state: expect.stringMatching(/FAILED|STABLE/) });
  });

  it('past CUTOVER a cancel is refused and the handoff finishes', async () => {
    await s.settled(id);
    await (async () => {
      while ((await describeDb()).scale_state !== 'STABLE') await new Promise((r) => setTimeout(r, 25));
    })();
    let answer: Awaited<ReturnType<ApiClient['post']>> | undefined;
    s.hook = async (point) => {
      if (point === 'CUTOVER') answer = await api.post(`/v2/dbs/${id}/scale/cancel`);
    };
    await api.patch(path, { size: 'L1' });
    const db = await s.settled(id);
    s.hook = undefined;
    expect(expectError(answer!, 409, 'conflict').details).toEqual({ scale_state: 'CUTOVER' });
    expect(db).toMatchObject({ scale_state: 'STABLE', current_profile: 'L1', writer_term: 3 });
  });

  it("another account can neither cancel nor resize the db: the same 404 as for a db that does not exist", async () => {
    const other = await new ApiClient(s.stack.controlApi!.url).signUp('other');
    const theirs = expectError(await other.post(`/v2/dbs/${id}/scale/cancel`), 404, 'not_found');
    const missing = expectError(await other.post('/v2/dbs/db-doesnotexist/scale/cancel'), 404, 'not_found');
    expect(theirs.message.replace(id, 'X')).toBe(missing.message.replace('db-doesnotexist', 'X'));
    expectError(await other.patch(path, { size: 'L8' }), 404, 'not_found');
    expect(await describeDb()).toMatchObject({ size: 'L1' });
  });

  it('a suspended db takes a new size at once and wakes at it', async () => {
    expect((await api.post(`/v2/dbs/${id}/suspend`)).body.state).toBe('suspended');
    const res = await api.patch(path, { size: 'L4' });
    expect(res.body).toMatchObject({ state: 'suspended', size: 'L4', current_profile: 'L4', target_profile: 'L4', scale_state: 'STABLE' });
    expect((await api.post(`/v2/dbs/${id}/resume`)).body).toMatchObject({ state: 'running', current_profile: 'L4' });
    const endpoint = s.autoscaler.describeCompute(id).endpoint!;
    const c = new pg.Client({ host: endpoint.host, port: endpoint.port, user: INTERNAL_SUPERUSER, password: s.stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), database: 'postgres' });
    await c.connect();
    expect((await c.query<{ m: string }>("SELECT current_setting('max_connections') AS m")).rows[0]!.m).toBe(PROFILES.L4.postgresSettings.max_connections);
    await c.end();
  });
});
