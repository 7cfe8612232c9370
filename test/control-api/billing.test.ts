import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, eventually, expectError, fieldProblems } from './client.js';

// GET /v2/billing/summary: compute-seconds by profile per db, from usage records the catalog keeps
// in the same transaction as each state change, driven here by a real autoscaler and real computes.
let stack: TestStack;
let anon: ApiClient;

beforeAll(async () => {
  stack = await startTestStack({}, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  await stack?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When the catalog's db.* events say the db entered and left `running`. */
async function runningSpans(dbId: string): Promise<{ from: number; to: number | null }[]> {
  const { rows } = await stack.ctx.catalog.pool.query<{ type: string; created_at: string }>('SELECT type, created_at FROM events WHERE db_id = $1 ORDER BY id', [dbId]);
  const spans: { from: number; to: number | null }[] = [];
  for (const e of rows) {
    const t = new Date(e.created_at).getTime();
    if (e.type === 'db.running') spans.push({ from: t, to: null });
    else if (e.type.startsWith('db.') && e.type !== 'db.updated' && spans.at(-1)?.to === null) spans.at(-1)!.to = t;
  }
  return spans;
}

async function newDb(me: ApiClient, tenant: string, name: string, size = 'L1') {
  const res = await me.post(`/v2/tenants/${tenant}/dbs`, { name, size });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

describe('usage of real computes', () => {
  it('bills each run from `running` until it leaves `running`, exactly as the lifecycle events say', async () => {
    const me = await anon.signUp('billing');
    await me.post('/v2/tenants', { name: 'acme' });
    const small = await newDb(me, 'acme', 'small', 'L1');
    const big = await newDb(me, 'acme', 'big', 'L2');
    const start = new Date(Date.now() - 1000).toISOString();

    expect((await me.get(`/v2/billing/summary?from=${start}`)).body).toMatchObject({ compute_seconds: 0, by_profile: {}, dbs: [] });

    for (const [id, ms] of [[small, 700], [big, 400], [small, 300]] as const) {
      expect((await me.post(`/v2/dbs/${id}/resume`)).body.state).toBe('running');
      await sleep(ms);
      expect((await me.post(`/v2/dbs/${id}/suspend`)).body.state).toBe('suspended');
    }
    const end = new Date(Date.now() + 1000).toISOString();
    const res = await me.get(`/v2/billing/summary?from=${start}&to=${end}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);

    const expected = async (id: string) => (await runningSpans(id)).reduce((s, x) => s + (x.to! - x.from), 0) / 1000;
    const smallSeconds = await expected(small);
    const bigSeconds = await expected(big);
    expect(smallSeconds).toBeGreaterThan(0.95); // 700 + 300 ms asleep while running
    expect(bigSeconds).toBeGreaterThan(0.38);
    const lines = Object.fromEntries(res.body.dbs.map((d: { db: string }) => [d.db, d]));
    expect(lines.small).toEqual({ db_id: small, tenant: 'acme', db: 'small', compute_seconds: expect.closeTo(smallSeconds, 2), by_profile: { L1: expect.closeTo(smallSeconds, 2) } });
    expect(lines.big).toEqual({ db_id: big, tenant: 'acme', db: 'big', compute_seconds: expect.closeTo(bigSeconds, 2), by_profile: { L2: expect.closeTo(bigSeconds, 2) } });
    expect(res.body.by_profile).toEqual({ L1: lines.small.compute_seconds, L2: lines.big.compute_seconds });
    expect(res.body.compute_seconds).toBeCloseTo(lines.small.compute_seconds + lines.big.compute_seconds, 3);
    expect(res.body).toMatchObject({ from: start, to: end });
    // Two runs of `small`, one of `big`: one usage row per interval.
    const { rows } = await stack.ctx.catalog.pool.query('SELECT db_id, profile, ended_at FROM usage WHERE db_id = ANY($1) ORDER BY id', [[small, big]]);
    expect(rows.map((r) => [r.db_id, r.profile, r.ended_at !== null])).toEqual([[small, 'L1', true], [big, 'L2', true], [small, 'L1', true]]);
  });

  it('counts a db still running up to now, and clips intervals to the period', async () => {
    const me = await anon.signUp('billing-open');
    await me.post('/v2/tenants', { name: 'acme' });
    const id = await newDb(me, 'acme', 'live');
    expect((await me.post(`/v2/dbs/${id}/resume`)).body.state).toBe('running');
    await sleep(500);
    const open = (await me.get('/v2/billing/summary')).body;
    expect(open.dbs).toHaveLength(1);
    expect(open.dbs[0].compute_seconds).toBeGreaterThan(0.45);
    await sleep(300);
    const later = (await me.get('/v2/billing/summary')).body;
    expect(later.dbs[0].compute_seconds).toBeGreaterThan(open.dbs[0].compute_seconds + 0.25);

    const [span] = await runningSpans(id);
    // A period that starts 200 ms into the run and ends 100 ms later.
    const from = new Date(span!.from + 200).toISOString();
    const to = new Date(span!.from + 300).toISOString();
    expect((await me.get(`/v2/billing/summary?from=${from}&to=${to}`)).body.compute_seconds).toBe(0.1);
    // A period wholly before the run bills nothing.
    const before = new Date(span!.from - 5000).toISOString();
    expect((await me.get(`/v2/billing/summary?from=${before}&to=${new Date(span!.from - 1).toISOString()}`)).body.dbs).toEqual([]);
    await me.post(`/v2/dbs/${id}/suspend`);
  });

  it('splits a run at a profile change (a handoff cutover) and keeps billing a deleted db', async () => {
    const me = await anon.signUp('billing-handoff');
    await me.post('/v2/tenants', { name: 'acme' });
    const id = await newDb(me, 'acme', 'grows');
    expect((await me.post(`/v2/dbs/${id}/resume`)).body.state).toBe('running');
    await sleep(300);
    // What a finished handoff writes: the writer now runs at L2.
    const moved = await stack.ctx.catalog.dbs.update(id, { current_profile: 'L2', target_profile: 'L2' }, { states: ['running'] });
    expect(moved?.current_profile).toBe('L2');
    await sleep(300);
    await me.post(`/v2/dbs/${id}/suspend`);
    const { rows } = await stack.ctx.catalog.pool.query('SELECT profile, started_at, ended_at FROM usage WHERE db_id = $1 ORDER BY id', [id]);
    expect(rows.map((r) => r.profile)).toEqual(['L1', 'L2']);
    expect(rows[0].ended_at).toEqual(rows[1].started_at);

    expect((await me.delete('/v2/tenants/acme/dbs/grows')).status).toBe(202);
    await eventually(async () => (await me.get(`/v2/dbs/${id}`)).status === 404, 30_000, 'the db to be deleted');
    expect((await me.delete('/v2/tenants/acme')).status).toBe(204);
    const bill = (await me.get('/v2/billing/summary')).body;
    expect(bill.dbs).toEqual([{ db_id: id, tenant: 'acme', db: 'grows', compute_seconds: expect.any(Number), by_profile: { L1: expect.any(Number), L2: expect.any(Number) } }]);
    expect(bill.dbs[0].by_profile.L1).toBeGreaterThan(0.25);
    expect(bill.dbs[0].by_profile.L2).toBeGreaterThan(0.25);
  });
});

describe('the query', () => {
  it('defaults to the current month until now and validates from and to', async () => {
    const me = await anon.signUp('billing-query');
    const res = await me.get('/v2/billing/summary');
    const now = new Date();
    expect(res.body.from).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString());
    expect(Math.abs(new Date(res.body.to).getTime() - Date.now())).toBeLessThan(5_000);
    expect(fieldProblems(await me.get('/v2/billing/summary?from=yesterday&to=2024-13-01'))).toEqual({ from: expect.stringContaining('date-time'), to: expect.stringContaining('date-time') });
    expect(fieldProblems(await me.get('/v2/billing/summary?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z'))).toEqual({ from: 'must be before `to`' });
    expect(fieldProblems(await me.get('/v2/billing/summary?period=month'))).toEqual({ period: 'is not a known field' });
    expectError(await anon.get('/v2/billing/summary'), 401, 'unauthorized');
  });
});
