import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicDb } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';
import { processesMentioning } from './processes.js';

let stack: TestStack;
let me: ApiClient;

/** Every field the describe must carry, null where unset, never missing. */
const DESCRIBE_FIELDS = [
  'id', 'tenant', 'name', 'state', 'size', 'current_scale', 'target_scale', 'current_profile', 'target_profile',
  'candidate_profile', 'candidate_worker_id', 'candidate_writer_term', 'scale_state', 'freeze_new_checkouts',
  'lease_control_epoch', 'autoscale_cooldown_until', 'scale_phase_started_at', 'scale_phase_deadline_at',
  'scale_failure_reason', 'suspend_timeout_seconds', 'created_at', 'updated_at',
];

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '30', PGWAKE_DEFAULT_SUSPEND_TIMEOUT_SECONDS: '300' }, ['autoscaler', 'control-api']);
  me = await new ApiClient(stack.controlApi!.url).signUp('dbs');
  expect((await me.post('/v2/tenants', { name: 'acme' })).status).toBe(201);
});
afterAll(async () => {
  await stack?.destroy();
});

describe('POST /v2/tenants/:tenant/dbs', () => {
  it('creates a suspended db with defaults, every lifecycle field present, and nothing running', async () => {
    const res = await me.post('/v2/tenants/acme/dbs', { name: 'app' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const db = res.body;
    for (const field of DESCRIBE_FIELDS) expect(db, field).toHaveProperty(field);
    expect(db).toMatchObject({
      tenant: 'acme',
      name: 'app',
      state: 'suspended',
      size: 'L1',
      current_scale: 0,
      target_scale: 0,
      current_profile: 'L1',
      target_profile: 'L1',
      candidate_profile: null,
      candidate_worker_id: null,
      candidate_writer_term: null,
      scale_state: 'STABLE',
      freeze_new_checkouts: false,
      autoscale_cooldown_until: null,
      scale_phase_started_at: null,
      scale_phase_deadline_at: null,
      scale_failure_reason: null,
      suspend_timeout_seconds: 300,
      pool_mode: 'session',
      pool_size: null,
    });
    expect(db.id).toMatch(/^db-[a-z0-9]+$/);
    expect(new Date(db.created_at).toISOString()).toBe(db.created_at);
    // The describe is exactly the catalog's public view: no internal field (compute port, account) leaks.
    const row = (await stack.ctx.catalog.dbs.byId(db.id))!;
    expect(Object.keys(db).sort()).toEqual(Object.keys(publicDb(row)).sort());
    expect(db).not.toHaveProperty('compute_port');
    expect(db).not.toHaveProperty('account_id');
    expect(row.compute_port).toBeNull();
    expect(await processesMentioning(db.id)).toEqual([]);
  });

  it('takes size, suspend timeout and pool settings', async () => {
    const res = await me.post('/v2/tenants/acme/dbs', { name: 'big', size: 'L2', suspend_timeout_seconds: 30, pool_mode: 'transaction', pool_size: 12, start_immediately: false });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ size: 'L2', current_profile: 'L2', target_profile: 'L2', suspend_timeout_seconds: 30, pool_mode: 'transaction', pool_size: 12, state: 'suspended' });
  });

  it('starts the writer at once with start_immediately', async () => {
    const res = await me.post('/v2/tenants/acme/dbs', { name: 'hot', start_immediately: true });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ state: 'running', current_scale: 1 });
    expect((await processesMentioning(res.body.id)).length).toBeGreaterThan(0);
    expect((await me.post(`/v2/dbs/${res.body.id}/suspend`)).body.state).toBe('suspended');
  });

  it('refuses a duplicate name with 409, and bad fields with 400 naming each', async () => {
    expect((await me.post('/v2/tenants/acme/dbs', { name: 'dup' })).status).toBe(201);
    expectError(await me.post('/v2/tenants/acme/dbs', { name: 'dup' }), 409, 'conflict');
    expect(fieldProblems(await me.post('/v2/tenants/acme/dbs', { name: 'Dup' }))).toEqual({ name: 'may contain only lowercase letters, digits and hyphens' });
    expect(
      fieldProblems(
        await me.post('/v2/tenants/acme/dbs', { name: 'x', size: 'L3', suspend_timeout_seconds: 29, pool_mode: 'statement', pool_size: 0, start_immediately: 'yes', replicas: 2 }),
      ),
    ).toEqual({
      size: 'must be one of L1, L2, L4, L8',
      suspend_timeout_seconds: 'must be >= 30',
      pool_mode: 'must be one of session, transaction',
      pool_size: 'must be >= 1',
      start_immediately: 'must be boolean',
      replicas: 'is not a known field',
    });
    expect(fieldProblems(await me.post('/v2/tenants/acme/dbs', { name: 'x', suspend_timeout_seconds: 604_801 }))).toEqual({ suspend_timeout_seconds: 'must be <= 604800' });
    expect(fieldProblems(await me.post('/v2/tenants/acme/dbs', { name: 'x', pool_size: '5' }))).toEqual({ pool_size: 'must be integer' });
    expect(fieldProblems(await me.post('/v2/tenants/acme/dbs', { size: 'L1' }))).toEqual({ name: 'is required' });
    expectError(await me.post('/v2/tenants/nope/dbs', { name: 'x' }), 404, 'not_found');
    // Nothing was created by the refused requests.
    expect((await me.get('/v2/tenants/acme/dbs')).body.dbs.map((d: { name: string }) => d.name)).not.toContain('x');
  });
});

describe('describe', () => {
  it('is the same by tenant and name, by id, and in the list', async () => {
    const created = (await me.post('/v2/tenants/acme/dbs', { name: 'seen' })).body;
    const byName = await me.get('/v2/tenants/acme/dbs/seen');
    const byId = await me.get(`/v2/dbs/${created.id}`);
    expect(byName.status).toBe(200);
    // A describe adds its live figures to the lifecycle fields create answered with.
    const { live: liveByName, ...byNameFields } = byName.body;
    const { live: liveById, ...byIdFields } = byId.body;
    expect(byNameFields).toEqual(created);
    expect(byIdFields).toEqual(created);
    expect(liveByName).toEqual(liveById);
    expect(liveById).toMatchObject({ client_connections: 0, last_wake_seconds: null, last_handoff: null });
    expect((await me.get('/v2/tenants/acme/dbs')).body.dbs).toContainEqual(created);
    expectError(await me.get('/v2/tenants/acme/dbs/unseen'), 404, 'not_found');
    expectError(await me.get('/v2/dbs/db-000000000000'), 404, 'not_found');
    expect(fieldProblems(await me.get('/v2/tenants/acme/dbs/Bad-Name'))).toEqual({ db: 'may contain only lowercase letters, digits and hyphens' });
  });
});

describe('PATCH /v2/tenants/:tenant/dbs/:db', () => {
  it('changes suspend timeout and pool settings, and nothing else', async () => {
    const created = (await me.post('/v2/tenants/acme/dbs', { name: 'tuned' })).body;
    const res = await me.patch('/v2/tenants/acme/dbs/tuned', { suspend_timeout_seconds: 600, pool_mode: 'transaction', pool_size: 20 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ suspend_timeout_seconds: 600, pool_mode: 'transaction', pool_size: 20, state: 'suspended' });
    expect(res.body.updated_at > created.updated_at).toBe(true);
    expect((await me.patch('/v2/tenants/acme/dbs/tuned', { pool_size: null })).body.pool_size).toBeNull();
    expect((await me.get(`/v2/dbs/${created.id}`)).body).toMatchObject({ suspend_timeout_seconds: 600, pool_mode: 'transaction', pool_size: null });
  });

  it('refuses empty, unknown and out-of-range changes', async () => {
    await me.post('/v2/tenants/acme/dbs', { name: 'strict' });
    expect(fieldProblems(await me.patch('/v2/tenants/acme/dbs/strict', {}))).toEqual({ '(body)': 'must set at least one field' });
    expect(fieldProblems(await me.patch('/v2/tenants/acme/dbs/strict', { size: 'L99' }))).toEqual({ size: 'must be one of L1, L2, L4, L8' });
    expect(fieldProblems(await me.patch('/v2/tenants/acme/dbs/strict', { name: 'renamed' }))).toEqual({ name: 'is not a known field' });
    expect(fieldProblems(await me.patch('/v2/tenants/acme/dbs/strict', { suspend_timeout_seconds: 5 }))).toEqual({ suspend_timeout_seconds: 'must be >= 30' });
    expect(fieldProblems(await me.patch('/v2/tenants/acme/dbs/strict', { pool_size: 1001 }))).toEqual({ pool_size: 'must be <= 1000' });
    expectError(await me.patch('/v2/tenants/acme/dbs/absent', { pool_size: 3 }), 404, 'not_found');
    expect((await me.get('/v2/tenants/acme/dbs/strict')).body).toMatchObject({ suspend_timeout_seconds: 300, pool_size: null });
  });
});

describe('suspend and resume', () => {
  it('start and stop the writer, answering with the describe; repeating either is harmless', async () => {
    const { id } = (await me.post('/v2/tenants/acme/dbs', { name: 'power' })).body;
    const up = await me.post(`/v2/dbs/${id}/resume`);
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ id, state: 'running', current_scale: 1, target_scale: 1 });
    expect((await stack.ctx.catalog.dbs.byId(id))!.compute_port).toBeGreaterThan(0);
    const again = await me.post(`/v2/dbs/${id}/resume`);
    expect(again.body).toMatchObject({ state: 'running' });
    expect(again.body.updated_at).toBe(up.body.updated_at);

    const down = await me.post(`/v2/dbs/${id}/suspend`);
    expect(down.status).toBe(200);
    expect(down.body).toMatchObject({ id, state: 'suspended', current_scale: 0, target_scale: 0 });
    expect(await processesMentioning(id)).toEqual([]);
    expect((await me.post(`/v2/dbs/${id}/suspend`)).body.state).toBe('suspended');
    expectError(await me.post('/v2/dbs/db-000000000000/resume'), 404, 'not_found');
  });

  it('answer 409 while the db is being deleted', async () => {
    const { id } = (await me.post('/v2/tenants/acme/dbs', { name: 'leaving' })).body;
    // Put it in `deleting` through the catalog alone, so nothing finishes the delete under the test.
    expect(await stack.ctx.catalog.dbs.transition(id, ['suspended'], 'deleting')).not.toBeNull();
    expect(expectError(await me.post(`/v2/dbs/${id}/resume`), 409, 'conflict').details).toEqual({ state: 'deleting' });
    expectError(await me.post(`/v2/dbs/${id}/suspend`), 409, 'conflict');
    expectError(await me.patch('/v2/tenants/acme/dbs/leaving', { pool_size: 2 }), 409, 'conflict');
    // Deleting again asks the autoscaler again, which finishes it.
    expect((await me.delete('/v2/tenants/acme/dbs/leaving')).status).toBe(202);
    await eventually(async () => (await me.get(`/v2/dbs/${id}`)).status === 404, 30_000, 'the db to be deleted');
  });
});

describe('DELETE /v2/tenants/:tenant/dbs/:db', () => {
  it('answers 202 with `deleting`, then the db is 404 everywhere and its name is free', async () => {
    const { id } = (await me.post('/v2/tenants/acme/dbs', { name: 'doomed', start_immediately: true })).body;
    const res = await me.delete('/v2/tenants/acme/dbs/doomed');
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id, state: 'deleting' });
    await eventually(async () => (await me.get('/v2/tenants/acme/dbs/doomed')).status === 404, 30_000, 'the db to be deleted');
    expectError(await me.get(`/v2/dbs/${id}`), 404);
    expectError(await me.post(`/v2/dbs/${id}/resume`), 404);
    expectError(await me.delete('/v2/tenants/acme/dbs/doomed'), 404);
    expect(await processesMentioning(id)).toEqual([]);
    const reborn = await me.post('/v2/tenants/acme/dbs', { name: 'doomed' });
    expect(reborn.status).toBe(201);
    expect(reborn.body.id).not.toBe(id);
  });
});
