import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendCancelRequest } from '../support/cancel-request.js';
import type { TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, directClient, dsn, errorsIn, gatewayReport, metricsText, pgClient, run, sample, setPool, startGatewayStack, startupPacket, tenantBackends, waitFor, type TenantDb } from './support.js';

/** Transaction mode on real computes, driven by real clients: many clients, few server connections. */
let stack: TestStack;

beforeAll(async () => {
  stack = await startGatewayStack({ PGWAKE_CHECKOUT_TIMEOUT_MS: '1500', PGWAKE_SERVER_IDLE_TIMEOUT_MS: '4000' });
});

afterAll(async () => {
  await stack?.destroy();
});

async function pooledDb(size: number, o: { suspendTimeoutSeconds?: number } = {}): Promise<TenantDb> {
  const t = await createTenantDb(stack, o);
  await setPool(stack, t, 'transaction', size);
  return t;
}

describe('transaction mode', () => {
  let t: TenantDb;
  beforeAll(async () => {
    t = await pooledDb(3);
  });

  it('serves many psql and pg clients over three server connections, reused and never more', async () => {
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t), '-Atc', 'select 1, current_user']);
    expect(stdout.trim()).toBe(`1|${t.tenant.pg_user}`);
    const clients = Array.from({ length: 12 }, () => pgClient(stack, t));
    await Promise.all(clients.map((c) => c.connect()));
    const pids = new Set<number>();
    for (let round = 0; round < 5; round++) {
      const rows = await Promise.all(clients.map((c, i) => c.query<{ pid: number; i: number }>('select pg_backend_pid() as pid, $1::int as i', [i])));
      rows.forEach((r, i) => {
        expect(r.rows[0]!.i).toBe(i);
        pids.add(r.rows[0]!.pid);
      });
    }
    expect(pids.size).toBeLessThanOrEqual(3);
    const direct = await directClient(stack, t);
    expect(await tenantBackends(direct, t)).toBeLessThanOrEqual(3);
    await direct.end();
    await Promise.all(clients.map((c) => c.end()));
  });

  it('keeps a transaction on one server connection until it ends, and reports it open while it is', async () => {
    const a = pgClient(stack, t);
    await a.connect();
    await a.query('begin');
    const pid = (await a.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    await a.query('create temp table if not exists tx_mark(i int)');
    for (let i = 0; i < 5; i++) expect((await a.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid).toBe(pid);
    await a.query('select 1'); // nothing else can take this connection meanwhile
    await waitFor('an open transaction reported', async () => (await gatewayReport(stack, t.db.id))?.openTransactions === 1, 3_000);
    expect((await gatewayReport(stack, t.db.id))?.checkoutsInFlight).toBe(1);
    await a.query('commit');
    await waitFor('nothing reported in flight', async () => {
      const r = await gatewayReport(stack, t.db.id);
      return r?.openTransactions === 0 && r.checkoutsInFlight === 0 && r.clientConnections === 1;
    }, 3_000);
    await a.end();
  });

  it('answers pipelined queries in order from one write, across transaction ends', async () => {
    const { data } = await rawSession(stack, t, Buffer.concat([query('select 1'), query('begin'), query('select 2'), query('commit'), query('select 3')]), 5);
    const text = data.toString('latin1');
    expect(text.indexOf('\x00\x00\x00\x011')).toBeLessThan(text.indexOf('\x00\x00\x00\x012'));
    expect(errorsIn(data)).toEqual([]);
    expect(readyStatuses(data)).toEqual(['I', 'T', 'T', 'I', 'I']);
  });

  it('copies in through a pooled connection while other clients wait their turn', async () => {
    const setup = pgClient(stack, t);
    await setup.connect();
    await setup.query('create table if not exists pooled_copy(i int, s text)');
    await setup.end();
    const input = Array.from({ length: 20_000 }, (_, i) => `${i}\trow ${i}`).join('\n') + '\n';
    const copies = Array.from({ length: 4 }, () => {
      const child = run('/usr/bin/psql', [dsn(stack, t), '-c', '\\copy pooled_copy from stdin']);
      child.child.stdin!.end(input);
      return child;
    });
    await Promise.all(copies);
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t), '-Atc', 'select count(*), sum(i) from pooled_copy']);
    expect(stdout.trim()).toBe(`80000|${4 * ((19_999 * 20_000) / 2)}`);
  });

  it('carries each client\'s startup parameters to whichever server it gets, and resets session SETs between clients', async () => {
    const a = pgClient(stack, t, { application_name: 'client-a', options: '-c statement_timeout=1234' } as never);
    const b = pgClient(stack, t, { application_name: 'client-b' });
    await Promise.all([a.connect(), b.connect()]);
    for (let i = 0; i < 10; i++) {
      const [ra, rb] = await Promise.all([
        a.query<{ app: string; st: string }>("select current_setting('application_name') as app, current_setting('statement_timeout') as st"),
        b.query<{ app: string; st: string }>("select current_setting('application_name') as app, current_setting('statement_timeout') as st"),
      ]);
      expect(ra.rows[0]).toEqual({ app: 'client-a', st: '1234ms' });
      expect(rb.rows[0]).toEqual({ app: 'client-b', st: '0' });
    }
    // A session-level SET that transaction mode cannot carry does not leak to the next client.
    await a.query("set work_mem = '7MB'");
    for (let i = 0; i < 10; i++) {
      expect((await b.query<{ w: string }>("select current_setting('work_mem') as w")).rows[0]!.w).toBe('4MB');
    }
    await Promise.all([a.end(), b.end()]);
  });

  it('resets what a client left on a server before the next client gets it; protocol-level statements stay', async () => {
    const one = await pooledDb(1);
    const a = pgClient(stack, one);
    const b = pgClient(stack, one);
    await Promise.all([a.connect(), b.connect()]);
    expect((await a.query({ name: 'kept', text: 'select 1 as n' })).rows[0]!.n).toBe(1);
    await a.query("set work_mem = '7MB'");
    await a.query('prepare p1 as select 1');
    await a.query('listen some_channel');
    await a.query('create temp table left_behind(i int)');
    await a.query('select pg_advisory_lock(42)');
    const seen = await b.query<{ wm: string; channels: number; temp: string | null; locks: number }>(
      "select current_setting('work_mem') as wm, (select count(*)::int from pg_listening_channels()) as channels, to_regclass('pg_temp.left_behind')::text as temp, (select count(*)::int from pg_locks where locktype = 'advisory') as locks",
    );
    expect(seen.rows[0]).toEqual({ wm: '4MB', channels: 0, temp: null, locks: 0 });
    await b.query('prepare p1 as select 2'); // no clash with a's SQL-level statement
    expect((await a.query({ name: 'kept', text: 'select 1 as n' })).rows[0]!.n).toBe(1);
    await Promise.all([a.end(), b.end()]);
  });

  it('reports a connected client that holds no checkout as no activity', async () => {
    const c = pgClient(stack, t);
    await c.connect();
    await c.query('select 1');
    await waitFor('one idle client reported', async () => {
      const r = await gatewayReport(stack, t.db.id);
      return r?.clientConnections === 1 && r.checkoutsInFlight === 0 && r.openTransactions === 0;
    }, 3_000);
    await c.end();
  });
});

describe('prepared statements over a pool smaller than the client count', () => {
  let t: TenantDb;
  beforeAll(async () => {
    t = await pooledDb(2);
    const c = pgClient(stack, t);
    await c.connect();
    await c.query('create table items(id int primary key, label text)');
    await c.query("insert into items select g, 'item ' || g from generate_series(1, 100) g");
    await c.end();
  });

  it('node-postgres named statements: each of 10 clients prepares and reuses them over 2 servers', async () => {
    const clients = Array.from({ length: 10 }, () => pgClient(stack, t));
    await Promise.all(clients.map((c) => c.connect()));
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        clients.map(async (c, i) => {
          const id = ((round * 10 + i) % 100) + 1;
          const r = await c.query<{ label: string }>({ name: 'item-by-id', text: 'select label from items where id = $1', values: [id] });
          expect(r.rows[0]!.label).toBe(`item ${id}`);
          // The same name for a different statement on another client must not collide.
          const s = await c.query<{ n: number }>({ name: `sum-${i % 2}`, text: i % 2 ? 'select $1::int + 1 as n' : 'select $1::int * 2 as n', values: [id] });
          expect(s.rows[0]!.n).toBe(i % 2 ? id + 1 : id * 2);
        }),
      );
    }
    const direct = await directClient(stack, t);
    const { rows } = await direct.query<{ name: string }>('select name from pg_prepared_statements');
    expect(rows).toEqual([]); // the direct session has none; the pooled ones are content-named
    await direct.end();
    await Promise.all(clients.map((c) => c.end()));
  });

  it('postgres.js (prepares by default, pipelines) with 12 connections over 2 servers', async () => {
    const sql = postgres({ host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user, password: t.password, database: t.db.name, max: 12, onnotice: () => undefined });
    try {
      const results = await Promise.all(Array.from({ length: 300 }, (_, i) => sql<{ id: number; label: string }[]>`select id, label from items where id = ${(i % 100) + 1}`));
      results.forEach((r, i) => expect(r[0]).toEqual({ id: (i % 100) + 1, label: `item ${(i % 100) + 1}` }));
      const tx = await sql.begin(async (s) => {
        await s`update items set label = label where id = 1`;
        return s<{ n: number }[]>`select count(*)::int as n from items where id <= ${50}`;
      });
      expect(tx[0]!.n).toBe(50);
      // DISCARD ALL drops every statement of the session: the next query prepares again and works.
      await sql`discard all`.simple();
      expect((await sql<{ id: number }[]>`select id from items where id = ${7}`)[0]!.id).toBe(7);
      await sql`deallocate all`.simple();
      expect((await sql<{ id: number }[]>`select id from items where id = ${8}`)[0]!.id).toBe(8);
    } finally {
      await sql.end();
    }
  });

  it('pgbench -M prepared and -M extended, 8 clients over 2 servers, no failure', async () => {
    const url = dsn(stack, t);
    await run('/usr/bin/pgbench', ['-i', '-s', '1', '-q', url]);
    for (const mode of ['prepared', 'extended', 'simple']) {
      // One thread per client: pgbench prepares with a blocking PQprepare, which would stall the other clients of its thread
      // (and the server connections they hold mid-transaction) while it waits for a checkout.
      const { stdout } = await run('/usr/bin/pgbench', ['-M', mode, '-c', '8', '-j', '8', '-T', '2', '-n', url]);
      expect(stdout, mode).toMatch(/number of failed transactions: 0/);
      expect(Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]), mode).toBeGreaterThan(50);
    }
  });

  it('pgbench -M prepared tpcb-like, 12 clients on 2 threads over 2 servers: no stall at the blocking PQprepare', async () => {
    const url = dsn(stack, t);
    await run('/usr/bin/pgbench', ['-i', '-s', '1', '-q', url]);
    // A thread blocked in PQprepare while its other clients hold both servers mid-transaction waited on
    // itself until the checkout timeout (1.5 s here), and pgbench stopped with 53300.
    const { stdout } = await run('/usr/bin/pgbench', ['-M', 'prepared', '-c', '12', '-j', '2', '-T', '3', '-n', url]);
    expect(stdout).toMatch(/number of failed transactions: 0/);
    expect(Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1])).toBeGreaterThan(100);
  });

  it('answers a standalone Parse+Sync of a statement the pool knows at once while every server is held; Bind runs it later', async () => {
    const text = 'select label from items where id = $1';
    const known = pgClient(stack, t);
    const holders = [pgClient(stack, t), pgClient(stack, t)];
    const c = pgClient(stack, t);
    await Promise.all([known, ...holders, c].map((x) => x.connect()));
    await known.query({ name: 'known', text, values: [1] });
    for (const h of holders) await h.query('begin; select 1');
    // node-postgres' connection speaks the messages; its client, which would call these answers unexpected, is taken off it.
    type Events = { on(e: string, f: (m: { fields?: unknown[] }) => void): void; once(e: string, f: () => void): void; removeAllListeners(e: string): void; parse(q: object): void; bind(q: object): void; execute(q: object): void; sync(): void };
    const con = (c as unknown as { connection: Events }).connection;
    for (const e of ['parseComplete', 'bindComplete', 'rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']) con.removeAllListeners(e);
    const seen: string[] = [];
    con.on('parseComplete', () => seen.push('ParseComplete'));
    con.on('dataRow', (m) => seen.push(`DataRow ${String(m.fields![0])}`));
    const ready = () => new Promise<void>((resolve) => con.once('readyForQuery', resolve));
    let answered = ready();
    con.parse({ name: 'mine', text, types: [] });
    con.sync();
    const held = await Promise.race([answered.then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 1_000))]);
    expect(held).toBe('answered');
    expect(seen).toEqual(['ParseComplete']);
    answered = ready();
    con.bind({ statement: 'mine', values: ['5'] });
    con.execute({});
    con.sync();
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['ParseComplete']); // the Bind waits for a server
    for (const h of holders) await h.query('commit');
    await answered;
    expect(seen).toEqual(['ParseComplete', 'DataRow item 5']);
    await Promise.all([known, ...holders].map((x) => x.end()));
    c.on('error', () => undefined); // its client no longer follows the connection: it is simply closed
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  });

  it('drops a server after "cached plan must not change result type", and the statement works again', async () => {
    const setup = pgClient(stack, t);
    await setup.connect();
    await setup.query('create table reshaped(a int)');
    await setup.query('insert into reshaped values (1)');
    const c = pgClient(stack, t);
    await c.connect();
    const q = { name: 'reshaped-all', text: 'select * from reshaped' };
    expect((await c.query(q)).rows).toEqual([{ a: 1 }]);
    await setup.query('alter table reshaped add column b int default 2');
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await c.query(q).then((r) => JSON.stringify(r.rows), (e: { code: string }) => e.code));
    }
    // At most the servers that had the old plan fail once each; then the statement runs everywhere.
    expect(outcomes.filter((o) => o === '0A000').length).toBeLessThanOrEqual(2);
    expect(outcomes.at(-1)).toBe(JSON.stringify([{ a: 1, b: 2 }]));
    await Promise.all([c.end(), setup.end()]);
  });
});

describe('the checkout queue', () => {
  it('serves waiting clients in order, and times out with 53300 naming the pool, the connection still usable', async () => {
    const t = await pooledDb(1);
    const holder = pgClient(stack, t);
    await holder.connect();
    await holder.query('begin');
    await holder.query('select 1');
    const order: number[] = [];
    const waiters = Array.from({ length: 4 }, () => pgClient(stack, t));
    await Promise.all(waiters.map((c) => c.connect()));
    const running = waiters.map(async (c, i) => {
      await new Promise((r) => setTimeout(r, i * 40)); // queued one after another
      await c.query('select 1');
      order.push(i);
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(order).toEqual([]);
    await holder.query('commit');
    await Promise.all(running);
    expect(order).toEqual([0, 1, 2, 3]);

    // Held past the checkout timeout (1.5 s here): 53300, and the client carries on afterwards.
    await holder.query('begin');
    await holder.query('select 1');
    const late = waiters[0]!;
    const err = await late.query('select 1').then(() => null, (e: { code: string; message: string }) => e);
    expect(err?.code).toBe('53300');
    expect(err?.message).toContain(`pool "${t.db.name}/${t.tenant.pg_user}"`);
    await holder.query('commit');
    expect((await late.query<{ n: number }>('select 5 as n')).rows[0]!.n).toBe(5);
    const text = await metricsText(stack);
    expect(sample(text, 'pgwake_gateway_checkouts_total', { outcome: 'timeout' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgwake_gateway_checkouts_total', { outcome: 'served' })).toBeGreaterThan(10);
    expect(sample(text, 'pgwake_gateway_checkout_wait_seconds_count')).toBeGreaterThan(10);
    expect(text).toContain('pgwake_gateway_server_connections{state="idle"}');
    expect(text).toContain('pgwake_gateway_checkout_queue_length');
    await Promise.all([holder.end(), ...waiters.map((c) => c.end())]);
  });

  it('cancels a pooled client\'s query, and a late cancel never reaches the next client of that connection', async () => {
    const t = await pooledDb(1);
    const sql = postgres({ host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user, password: t.password, database: t.db.name, max: 1, onnotice: () => undefined });
    const sleeping = sql`select pg_sleep(30)`;
    const outcome = sleeping.then(() => 'finished', (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    sleeping.cancel();
    expect(await outcome).toBe('57014');
    expect(Date.now() - started).toBeLessThan(5_000);

    // Client A's transaction is over; B now runs on the only server. A's cancel finds nothing of A's to cancel.
    const a = pgClient(stack, t);
    const b = pgClient(stack, t);
    await Promise.all([a.connect(), b.connect()]);
    await a.query('select 1');
    const bRunning = b.query<{ ok: number }>('select 1 as ok from pg_sleep(0.8)');
    await new Promise((r) => setTimeout(r, 200));
    const { processID, secretKey } = a as unknown as { processID: number; secretKey: number };
    await sendCancelRequest(stack.gateway!.port, processID, secretKey);
    expect((await bRunning).rows).toEqual([{ ok: 1 }]);
    await Promise.all([a.end(), b.end(), sql.end()]);
  });
});

describe('server connections', () => {
  it('are closed after the idle timeout', async () => {
    const t = await pooledDb(3);
    const clients = Array.from({ length: 3 }, () => pgClient(stack, t));
    await Promise.all(clients.map((c) => c.connect()));
    await Promise.all(clients.map((c) => c.query('select pg_sleep(0.2)')));
    const direct = await directClient(stack, t);
    expect(await tenantBackends(direct, t)).toBe(3);
    await waitFor('idle server connections closed', async () => (await tenantBackends(direct, t)) === 0, 10_000, 200);
    // The clients are still connected, and get a fresh server for their next transaction.
    expect((await clients[0]!.query<{ n: number }>('select 9 as n')).rows[0]!.n).toBe(9);
    await direct.end();
    await Promise.all(clients.map((c) => c.end()));
  });

  it('1,000 client connections over a pool of 10, each running transactions, without an error', async () => {
    const t = await pooledDb(10);
    const n = 1000;
    const clients: pg.Client[] = [];
    for (let i = 0; i < n; i += 100) {
      const batch = Array.from({ length: 100 }, () => pgClient(stack, t));
      await Promise.all(batch.map((c) => c.connect()));
      clients.push(...batch);
    }
    const results = await Promise.all(
      clients.map(async (c, i) => {
        await c.query('begin');
        const r = await c.query<{ i: number }>('select $1::int as i', [i]);
        await c.query('commit');
        const p = await c.query<{ i: number }>({ name: 'echo', text: 'select $1::int + 0 as i', values: [i] });
        return r.rows[0]!.i === i && p.rows[0]!.i === i;
      }),
    );
    expect(results.filter(Boolean).length).toBe(n);
    const direct = await directClient(stack, t);
    expect(await tenantBackends(direct, t)).toBeLessThanOrEqual(10);
    await direct.end();
    await Promise.all(clients.map((c) => c.end()));
  }, 120_000);
});

describe('suspend with clients still connected', () => {
  it('suspends under idle transaction-mode clients; their next transaction wakes it with no error, statements prepared again', async () => {
    const t = await pooledDb(2, { suspendTimeoutSeconds: 1 });
    const c = pgClient(stack, t);
    await c.connect();
    const sqlJs = postgres({ host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user, password: t.password, database: t.db.name, max: 2, onnotice: () => undefined });
    const q = { name: 'wake-me', text: 'select $1::int * 3 as n', values: [7] };
    expect((await c.query(q)).rows[0]).toEqual({ n: 21 });
    expect((await sqlJs<{ n: number }[]>`select ${4}::int + 1 as n`)[0]!.n).toBe(5);
    await waitFor('the db suspended under connected clients', async () => (await dbRow(stack, t.db.id)).state === 'suspended', 20_000, 100);
    expect((await c.query(q)).rows[0]).toEqual({ n: 21 });
    expect((await sqlJs<{ n: number }[]>`select ${4}::int + 1 as n`)[0]!.n).toBe(5);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    await c.end();
    await sqlJs.end();
  }, 60_000);
});

// ---- raw protocol helpers ----

function query(sql: string): Buffer {
  const text = Buffer.from(sql + '\0');
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([head, text]);
}

function readyStatuses(data: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at + 5 <= data.length) {
    const len = data.readInt32BE(at + 1);
    if (data[at] === 0x5a) out.push(String.fromCharCode(data[at + 5]!));
    at += 1 + len;
  }
  return out;
}

/** Logs in with SCRAM through pg's own connection code would be long by hand: the gateway's auth is pg's job; raw bytes go after. */
async function rawSession(stack: TestStack, t: TenantDb, payload: Buffer, expectReady: number): Promise<{ data: Buffer }> {
  const c = pgClient(stack, t);
  c.on('error', () => undefined); // its socket is taken over and destroyed below
  await c.connect();
  const socket = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.removeAllListeners('data');
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (readyStatuses(Buffer.concat(chunks)).length >= expectReady) resolve();
    });
  });
  socket.write(payload);
  await Promise.race([done, new Promise((r) => setTimeout(r, 5_000))]);
  socket.destroy();
  return { data: Buffer.concat(chunks) };
}


void startupPacket;
