import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlApi } from '../../control-api/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { MANY_SIGNUPS } from './settings.js';
import { ApiClient, eventually, expectError } from './client.js';
import { SseReader } from './sse.js';

let stack: TestStack;
let anon: ApiClient;
const open: SseReader[] = [];

beforeAll(async () => {
  stack = await startTestStack(MANY_SIGNUPS, ['autoscaler', 'control-api']);
  anon = new ApiClient(stack.controlApi!.url);
});
afterAll(async () => {
  for (const r of open) r.close();
  await stack?.destroy();
});

async function stream(client: ApiClient, lastEventId?: string | number, baseUrl = stack.controlApi!.url): Promise<SseReader> {
  const reader = await SseReader.open(`${baseUrl}/v2/events`, client.key!, lastEventId);
  open.push(reader);
  return reader;
}

async function openStreamCount(): Promise<number> {
  const text = (await anon.get('/metrics')).body as string;
  const m = /^pgwake_control_api_event_streams (\d+)$/m.exec(text);
  return Number(m?.[1]);
}

describe('GET /v2/events', () => {
  it("streams the account's tenant and db changes live, with catalog ids", async () => {
    const me = await anon.signUp();
    const live = await stream(me);
    expect(live.status).toBe(200);
    expect(live.headers!.get('content-type')).toMatch(/^text\/event-stream/);
    expect(live.headers!.get('cache-control')).toContain('no-cache');

    await me.post('/v2/tenants', { name: 'acme' });
    const db = (await me.post('/v2/tenants/acme/dbs', { name: 'app' })).body;
    await live.until((r) => r.messages.some((m) => m.event === 'db.suspended'), 20_000, 'db.suspended');
    const events = live.events();
    expect(events.map((e) => e.type)).toEqual(['tenant.created', 'db.created', 'db.suspended']);
    expect(live.messages.map((m) => Number(m.id))).toEqual(events.map((e) => e.id));
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    expect(events[1]).toMatchObject({ db_id: db.id, data: { name: 'app', state: 'creating', tenant: 'acme' } });
    expect(events[2]!.data).toMatchObject({ id: db.id, state: 'suspended' });
    // The stream shows what the describe shows, never where a compute listens.
    for (const e of events) expect(e.data).not.toHaveProperty('compute_port');
  });

  it('replays exactly what came after Last-Event-ID, then goes on live', async () => {
    const me = await anon.signUp();
    await me.post('/v2/tenants', { name: 'one' });
    await me.post('/v2/tenants', { name: 'two' });
    await me.delete('/v2/tenants/one');
    const all = await stream(me, 0);
    await all.until((r) => r.messages.length >= 3, 10_000, 'three events');
    expect(all.events().map((e) => [e.type, e.data.tenant])).toEqual([
      ['tenant.created', 'one'],
      ['tenant.created', 'two'],
      ['tenant.deleted', 'one'],
    ]);

    const firstId = all.messages[0]!.id!;
    const resumed = await stream(me, firstId);
    await resumed.until((r) => r.messages.length >= 2, 10_000, 'the two later events');
    expect(resumed.events().map((e) => [e.type, e.data.tenant])).toEqual([
      ['tenant.created', 'two'],
      ['tenant.deleted', 'one'],
    ]);

    const replayedIds = all.messages.slice(1).map((m) => m.id);
    await me.post('/v2/tenants', { name: 'three' });
    await resumed.until((r) => r.messages.length >= 3, 10_000, 'the live event');
    await all.until((r) => r.messages.length >= 4, 10_000, 'the live event on the first stream too');
    expect(resumed.events()[2]).toMatchObject({ type: 'tenant.created', data: { tenant: 'three' } });
    expect(resumed.messages.map((m) => m.id)).toEqual([...replayedIds, all.messages[3]!.id]);
    // Nothing was sent twice.
    await new Promise((r) => setTimeout(r, 200));
    expect(resumed.messages.length).toBe(3);
  });

  it('replays a long backlog in order, page after page', async () => {
    const me = await anon.signUp();
    const accountId = (await stack.ctx.catalog.accounts.authenticate(me.key!))!.account.id;
    const start = await stack.ctx.catalog.events.latestId(accountId);
    await stack.ctx.catalog.pool.query(
      "INSERT INTO events (account_id, type, data) SELECT $1, 'test.bulk', jsonb_build_object('n', g) FROM generate_series(1, 1234) g",
      [accountId],
    );
    const reader = await stream(me, start);
    await reader.until((r) => r.messages.length >= 1234, 20_000, '1234 events');
    expect(reader.events().map((e) => e.data.n)).toEqual(Array.from({ length: 1234 }, (_, i) => i + 1));
  });

  it("never shows another account's events", async () => {
    const a = await anon.signUp();
    const b = await anon.signUp();
    const streamA = await stream(a, 0);
    const streamB = await stream(b, 0);
    await a.post('/v2/tenants', { name: 'mine' });
    await b.post('/v2/tenants', { name: 'theirs' });
    await streamA.until((r) => r.messages.length >= 1, 10_000, "A's event");
    await streamB.until((r) => r.messages.length >= 1, 10_000, "B's event");
    await new Promise((r) => setTimeout(r, 200));
    expect(streamA.events().map((e) => e.data.tenant)).toEqual(['mine']);
    expect(streamB.events().map((e) => e.data.tenant)).toEqual(['theirs']);
  });

  it('needs an API key and a numeric Last-Event-ID', async () => {
    expectError(await anon.get('/v2/events'), 401, 'unauthorized');
    const me = await anon.signUp();
    const err = expectError(await me.get('/v2/events', { 'last-event-id': 'abc' }), 400, 'invalid_request');
    expect(err.details.fields[0]).toMatchObject({ in: 'headers', field: 'last-event-id' });
  });

  it('sends heartbeat comments on a quiet stream', async () => {
    const api = await startControlApi(stack.ctx, { eventHeartbeatMs: 100 });
    try {
      const me = await new ApiClient(api.url).signUp();
      const quiet = await stream(me, undefined, api.url);
      await quiet.until((r) => r.comments.filter((c) => c === 'heartbeat').length >= 2, 5_000, 'two heartbeats');
      expect(quiet.messages).toEqual([]);
    } finally {
      await api.stop();
    }
  });

  it('lets go of a stream when its client disconnects', async () => {
    const me = await anon.signUp();
    const before = await openStreamCount();
    const readers = [await stream(me), await stream(me), await stream(me)];
    await eventually(async () => (await openStreamCount()) === before + 3, 5_000, 'three open streams');
    for (const r of readers) r.close();
    await eventually(async () => (await openStreamCount()) === before, 5_000, 'the streams to be released');
  });

  it('ends open streams when the API stops, and stop() does not wait on them', async () => {
    const api = await startControlApi(stack.ctx, { eventHeartbeatMs: 60_000 });
    const me = await new ApiClient(api.url).signUp();
    const readers = [await stream(me, 0, api.url), await stream(me, undefined, api.url)];
    await readers[0]!.until((r) => r.messages.length >= 0 && r.status === 200, 5_000, 'the stream');
    const t0 = Date.now();
    await api.stop();
    expect(Date.now() - t0).toBeLessThan(3_000);
    for (const r of readers) await r.until((x) => x.ended, 5_000, 'the stream to end');
  });
});
