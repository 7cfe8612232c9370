import { describe, expect, it } from 'vitest';
import { cancelKeyHex, ControlRequestError, parseCancelKeyHex, type Coordinator, type DbRecord } from '../../core/index.js';

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

    it('shares one flight between processes, its value and its error, and flies again once it ended', withPair(async (a, b) => {
      let runs = 0;
      const fly = (c: Coordinator) => c.singleFlight('shared', async () => (runs++, await new Promise((r) => setTimeout(r, 100)), { answer: 42 }));
      expect(await Promise.all([fly(a), fly(b), fly(a), fly(b)])).toEqual([{ answer: 42 }, { answer: 42 }, { answer: 42 }, { answer: 42 }]);
      expect(runs).toBe(1);
      const failing = (c: Coordinator) => c.singleFlight('broken', async () => (runs++, await new Promise((r) => setTimeout(r, 100)), Promise.reject(new Error('boom'))));
      const results = await Promise.allSettled([failing(a), failing(b)]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['boom', 'boom']);
      expect(runs).toBe(2);
      expect(await fly(b)).toEqual({ answer: 42 });
      expect(runs).toBe(3);
    }));

    it('coalesces identical control requests from several processes into one call, and keeps different ones apart', withPair(async (a, b) => {
      const calls: string[] = [];
      b.serveControlRequests(async (req) => {
        calls.push(`${req.action}:${req.dbId}`);
        await new Promise((r) => setTimeout(r, 100));
      });
      await Promise.all([
        ...Array.from({ length: 5 }, () => a.requestControl({ action: 'wake', dbId: 'db-1' }, 3000)),
        ...Array.from({ length: 5 }, () => b.requestControl({ action: 'wake', dbId: 'db-1' }, 3000)),
        a.requestControl({ action: 'wake', dbId: 'db-2' }, 3000),
        b.requestControl({ action: 'suspend', dbId: 'db-1' }, 3000),
      ]);
      expect(calls.sort()).toEqual(['suspend:db-1', 'wake:db-1', 'wake:db-2']);
      // Once done, the same request is a new call.
      await a.requestControl({ action: 'wake', dbId: 'db-1' }, 3000);
      expect(calls.length).toBe(4);
    }));

    it('passes the handler\'s failure to every caller as a failed ControlRequestError', withPair(async (a, b) => {
      b.serveControlRequests(async () => {
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('no space left for the compute');
      });
      const results = await Promise.allSettled([a.requestControl({ action: 'provision', dbId: 'db-9' }, 3000), b.requestControl({ action: 'provision', dbId: 'db-9' }, 3000)]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as ControlRequestError;
        expect(err).toBeInstanceOf(ControlRequestError);
        expect(err).toMatchObject({ code: 'failed', message: 'no space left for the compute' });
      }
    }));

    it('says no_autoscaler when nothing serves control requests, and stops serving on unsubscribe', withPair(async (a, b) => {
      await expect(a.requestControl({ action: 'wake', dbId: 'db-1' }, 300)).rejects.toMatchObject({ code: 'no_autoscaler' });
      let calls = 0;
      const stop = b.serveControlRequests(async () => void calls++);
      await a.requestControl({ action: 'wake', dbId: 'db-1' }, 3000);
      stop();
      await new Promise((r) => setTimeout(r, 1000)); // a Redis server notices within its pop wait
      await expect(a.requestControl({ action: 'wake', dbId: 'db-1' }, 300)).rejects.toBeInstanceOf(ControlRequestError);
      expect(calls).toBe(1);
    }));

    it('keeps only the latest report of a gateway', withPair(async (a, b) => {
      const one = { clientConnections: 1, checkoutsInFlight: 0, openTransactions: 0, lastActivityAt: 1 };
      await a.reportActivity({ gatewayId: 'g1', dbs: { d: one, e: one } }, 5000);
      await a.reportActivity({ gatewayId: 'g1', dbs: { d: { ...one, clientConnections: 4 } } }, 5000);
      const activity = await b.activity();
      expect(activity.get('d')?.clientConnections).toBe(4);
      expect(activity.has('e')).toBe(false);
      expect(await b.gatewayReports()).toEqual([{ gatewayId: 'g1', dbs: { d: { ...one, clientConnections: 4 } } }]);
    }));

    it('lets only the holder renew or release a lease, across processes', withPair(async (a, b) => {
      const lease = await a.acquireLease('leader', 'p1', 5000);
      expect(lease).not.toBeNull();
      const forged = { ...lease!, holder: 'p2' };
      expect(await b.renewLease(forged, 5000)).toBe(false);
      await b.releaseLease(forged);
      await b.releaseLease({ ...lease!, epoch: lease!.epoch - 1 });
      expect(await b.acquireLease('leader', 'p2', 5000)).toBeNull();
      await a.releaseLease(lease!);
      const taken = await b.acquireLease('leader', 'p2', 5000);
      expect(taken?.epoch).toBeGreaterThan(lease!.epoch);
      expect(await a.renewLease(lease!, 5000)).toBe(false);
      expect(await b.renewLease(taken!, 5000)).toBe(true);
      // Leases of other names are independent.
      expect(await a.acquireLease('other', 'p1', 5000)).not.toBeNull();
    }));

    it('routes a forwarded cancel key to the gateway that registered it', withPair(async (a, b) => {
      const heardByG1: string[] = [];
      const heardByG2: string[] = [];
      a.onCancelForwarded('g1', (key) => heardByG1.push(key));
      const offG2 = b.onCancelForwarded('g2', (key) => heardByG2.push(key));
      const key = cancelKeyHex(12345, Buffer.from([1, 2, 3, 4]));
      expect(parseCancelKeyHex(key)).toEqual({ processId: 12345, secretKey: Buffer.from([1, 2, 3, 4]) });
      await b.registerCancelKey(key, 'g2', 5000);
      expect(await a.forwardCancel(key)).toBe(true);
      await eventually(() => heardByG2.length === 1);
      expect(heardByG2).toEqual([key]);
      expect(heardByG1).toEqual([]);
      expect(await a.forwardCancel(cancelKeyHex(999, 1))).toBe(false);
      await b.unregisterCancelKey(key);
      expect(await a.forwardCancel(key)).toBe(false);
      // A registration lapses (its gateway died) …
      await b.registerCancelKey(key, 'g2', 100);
      await new Promise((r) => setTimeout(r, 200));
      expect(await a.forwardCancel(key)).toBe(false);
      // … and a key whose gateway no longer listens is not delivered.
      await b.registerCancelKey(key, 'g2', 5000);
      offG2();
      expect(await a.forwardCancel(key)).toBe(false);
      expect(heardByG2).toEqual([key]);
    }));

    it('hands out an unsubscribe for reconnect notices', withPair(async (a) => {
      let heard = 0;
      const off = a.onReconnect(() => heard++);
      expect(typeof off).toBe('function');
      off();
      expect(heard).toBe(0);
    }));
  });
}
