import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisCoordinator, type Coordinator, type DbRecord } from '../../core/index.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { coordinatorContract } from './coordinator-contract.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
}, 60_000);
afterAll(async () => {
  await redis?.stop();
});

/** Two RedisCoordinators on one Redis are two processes; a fresh prefix keeps each test to itself. */
async function pair(prefix = `test-${randomUUID()}:`): Promise<[RedisCoordinator, RedisCoordinator, () => Promise<void>]> {
  const a = await RedisCoordinator.connect(redis.url, { prefix, flightLockTtlMs: 600 });
  const b = await RedisCoordinator.connect(redis.url, { prefix, flightLockTtlMs: 600 });
  return [a, b, async () => void (await Promise.all([a.close(), b.close()]))];
}

coordinatorContract('redis', pair);

const eventually = async (check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('redis coordinator: what only a shared server can do', () => {
  it('fails to connect with a message that names Redis, and without a password in it', async () => {
    const started = Date.now();
    await expect(RedisCoordinator.connect('redis://:s3cret@127.0.0.1:1', { connectTimeoutMs: 1_000 })).rejects.toThrow(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('tells subscribers of a reconnect after Redis restarted, and delivers again afterwards', async () => {
    const [a, b, done] = await pair();
    try {
      let reconnectsA = 0;
      let reconnectsB = 0;
      a.onReconnect(() => reconnectsA++);
      b.onReconnect(() => reconnectsB++);
      const heard: string[] = [];
      b.onDbChanged(({ db }) => heard.push(db.id));
      const before = await a.acquireLease('autoscaler', 'p1', 60_000);
      await redis.restart(300);
      await eventually(() => reconnectsA === 1 && reconnectsB === 1);
      // Missed nothing that is published after the notice: the subscription is back.
      a.publishDbChanged({ db: { id: 'after-restart' } as DbRecord });
      await eventually(() => heard.includes('after-restart'));
      // Redis lost its data (no persistence); a new holder's epoch is still larger.
      const after = await b.acquireLease('autoscaler', 'p2', 60_000);
      expect(after?.epoch).toBeGreaterThan(before!.epoch);
    } finally {
      await done();
    }
  }, 30_000);

  it('lets a control request asked while Redis is down go through once it is back', async () => {
    const [a, b, done] = await pair();
    try {
      let calls = 0;
      b.serveControlRequests(async () => void calls++);
      await a.requestControl({ action: 'wake', dbId: 'db-1' }, 5_000);
      const restarted = redis.restart(1_000);
      await new Promise((r) => setTimeout(r, 100)); // Redis is down now
      const started = Date.now();
      await a.requestControl({ action: 'wake', dbId: 'db-1' }, 15_000);
      await restarted;
      expect(calls).toBe(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    } finally {
      await done();
    }
  }, 30_000);

  it('flies again when the holder of a flight died (its lock lapses without an outcome)', async () => {
    const prefix = `test-${randomUUID()}:`;
    const [a, b, done] = await pair(prefix);
    const raw = new Redis(redis.url);
    try {
      // A holder that took the lock and died before finishing: nobody renews it.
      await raw.set(`${prefix}flight:app:wake-db`, 'dead-holder', 'PX', 500);
      let runs = 0;
      const started = Date.now();
      const results = await Promise.all([a, b].map((c: Coordinator) => c.singleFlight('wake-db', async () => (runs++, await new Promise((r) => setTimeout(r, 50)), 'woken'))));
      expect(results).toEqual(['woken', 'woken']);
      expect(runs).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    } finally {
      raw.disconnect();
      await done();
    }
  });

  it('keeps a long flight\'s lock alive while it runs, so nobody else flies', async () => {
    const [a, b, done] = await pair();
    try {
      let runs = 0;
      // Three times the lock's TTL (600 ms): only renewal keeps others waiting.
      const slow = () => (runs++, new Promise<string>((r) => setTimeout(() => r('ok'), 1_800)));
      const first = a.singleFlight('slow', slow);
      await new Promise((r) => setTimeout(r, 100));
      expect(await Promise.all([first, b.singleFlight('slow', slow)])).toEqual(['ok', 'ok']);
      expect(runs).toBe(1);
    } finally {
      await done();
    }
  });

  it('does not act on a control request whose requester gave up before it was taken', async () => {
    const [a, b, done] = await pair();
    try {
      await expect(a.requestControl({ action: 'wake', dbId: 'db-late' }, 200)).rejects.toMatchObject({ code: 'no_autoscaler' });
      let calls = 0;
      b.serveControlRequests(async () => void calls++);
      await new Promise((r) => setTimeout(r, 800));
      expect(calls).toBe(0);
    } finally {
      await done();
    }
  });

  it('renews a lease only while Redis answers before the lease ends', async () => {
    const [a, b, done] = await pair();
    try {
      const lease = await a.acquireLease('leader', 'p1', 800);
      const restarting = redis.restart(2_000);
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      expect(await a.renewLease(lease!, 800)).toBe(false);
      expect(Date.now() - started).toBeLessThan(1_000);
      await restarting;
      expect(await b.acquireLease('leader', 'p2', 800)).not.toBeNull();
    } finally {
      await done();
    }
  }, 20_000);
});
