import { describe, expect, it } from 'vitest';
import { ControlRequestError, type Coordinator, type DbRecord } from '../../core/index.js';

/**
 * What every Coordinator must do, whatever carries it. Each implementation runs
 * this suite: `make()` returns coordinators that share one world (two "processes").
 */
export function coordinatorContract(name: string, make: () => Promise<[Coordinator, Coordinator, () => Promise<void>]>): void {
  const withPair = (fn: (a: Coordinator, b: Coordinator) => Promise<void>) => async () => {
    const [a, b, done] = await make();
    try {
      await fn(a, b);
    } finally {
      await done();
    }
  };
  const eventually = async (check: () => boolean | Promise<boolean>, ms = 3000) => {
    const until = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > until) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  describe(`coordinator contract: ${name}`, () => {
    it('delivers db changes and event notices to every subscriber', withPair(async (a, b) => {
      const heard: string[] = [];
      const off = b.onDbChanged(({ db }) => heard.push(db.id));
      const events: number[] = [];
      b.onEventAppended((e) => events.push(e.eventId));
      a.publishDbChanged({ db: { id: 'db-1' } as DbRecord });
      a.publishEventAppended({ accountId: 'acct-1', eventId: 7 });
      await eventually(() => heard.length === 1 && events.length === 1);
      off();
      a.publishDbChanged({ db: { id: 'db-2' } as DbRecord });
      await new Promise((r) => setTimeout(r, 50));
      expect(heard).toEqual(['db-1']);
      expect(events).toEqual([7]);
    }));

    it('routes control requests to the server and shares one call among identical requests', withPair(async (a, b) => {
      let calls = 0;
      b.serveControlRequests(async (req) => {
        calls++;
        await new Promise((r) => setTimeout(r, 50));
        if (req.action === 'delete') throw new Error('cannot delete');
      });
      await Promise.all(Array.from({ length: 10 }, () => a.requestControl({ action: 'wake', dbId: 'db-1' }, 2000)));
      expect(calls).toBe(1);
      await expect(a.requestControl({ action: 'delete', dbId: 'db-1' }, 2000)).rejects.toBeInstanceOf(ControlRequestError);
    }));

    it('times a control request out with a typed error', withPair(async (a, b) => {
      b.serveControlRequests(() => new Promise((r) => setTimeout(r, 500)));
      await expect(a.requestControl({ action: 'wake', dbId: 'db-slow' }, 50)).rejects.toMatchObject({ code: 'timeout' });
    }));

    it('sums activity over live gateways and forgets a gateway whose heartbeat lapsed', withPair(async (a, b) => {
      await a.reportActivity({ gatewayId: 'g1', dbs: { d: { clientConnections: 2, checkoutsInFlight: 1, openTransactions: 0, lastActivityAt: 10 } } }, 5000);
      await b.reportActivity({ gatewayId: 'g2', dbs: { d: { clientConnections: 3, checkoutsInFlight: 0, openTransactions: 1, lastActivityAt: 20 } } }, 100);
      expect((await a.activity()).get('d')).toEqual({ clientConnections: 5, checkoutsInFlight: 1, openTransactions: 1, lastActivityAt: 20 });
      expect((await b.gatewayReports()).map((r) => r.gatewayId).sort()).toEqual(['g1', 'g2']);
      await new Promise((r) => setTimeout(r, 200));
      expect((await a.activity()).get('d')?.clientConnections).toBe(2);
      expect((await b.gatewayReports()).map((r) => r.gatewayId)).toEqual(['g1']);
    }));

    it('gives a lease to one holder at a time, with a new epoch for each new holder', withPair(async (a, b) => {
      const first = await a.acquireLease('autoscaler', 'p1', 200);
      expect(first).not.toBeNull();
      expect(await b.acquireLease('autoscaler', 'p2', 200)).toBeNull();
      expect(await a.renewLease(first!, 200)).toBe(true);
      const again = await a.acquireLease('autoscaler', 'p1', 200);
      expect(again?.epoch).toBe(first!.epoch);
      await new Promise((r) => setTimeout(r, 300));
      const second = await b.acquireLease('autoscaler', 'p2', 200);
      expect(second?.epoch).toBeGreaterThan(first!.epoch);
      expect(await a.renewLease(first!, 200)).toBe(false);
      await b.releaseLease(second!);
      const third = await a.acquireLease('autoscaler', 'p1', 200);
      expect(third?.epoch).toBeGreaterThan(second!.epoch);
    }));

    it('runs one flight per key and shares its result', withPair(async (a) => {
      let runs = 0;
      const fly = () => a.singleFlight('k', async () => (runs++, await new Promise((r) => setTimeout(r, 30)), 42));
      expect(await Promise.all([fly(), fly(), fly()])).toEqual([42, 42, 42]);
      expect(runs).toBe(1);
    }));
  });
}
