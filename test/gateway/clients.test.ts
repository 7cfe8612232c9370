import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../gateway/index.js';
import type { TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, directClient, dsn, metricsText, pgClient, run, sample, setPool, startGatewayStack, waitFor, type TenantDb } from './support.js';

/** Real clients through the gateway, on one suspended db that the first of them wakes. */
let stack: TestStack;
let t: TenantDb;

beforeAll(async () => {
  stack = await startGatewayStack();
  t = await createTenantDb(stack);
});

afterAll(async () => {
  await stack?.destroy();
});

describe('psql', () => {
  it('wakes the suspended db on the first connection, without TLS', async () => {
    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t, { sslmode: 'disable' }), '-Atc', 'select 1, current_user, current_database()']);
    expect(stdout.trim()).toBe(`1|${t.tenant.pg_user}|app`);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
  });

  it('works over TLS (sslmode=require) with SCRAM-SHA-256-PLUS channel binding', async () => {
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t, { sslmode: 'require', extra: 'channel_binding=require' }), '-Atc', 'select 42']);
    expect(stdout.trim()).toBe('42');
  });

  it('runs multi-statement queries and passes errors through with their SQLSTATE', async () => {
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t), '-At', '-c', 'create table if not exists multi(i int); insert into multi values (1),(2); select count(*) from multi; drop table multi']);
    expect(stdout.trim().split('\n')).toContain('2');
    const failed = await run('/usr/bin/psql', [dsn(stack, t), '-At', '-v', 'VERBOSITY=verbose', '-c', 'select 1/0']).then(
      () => null,
      (err: { stderr: string }) => err.stderr,
    );
    expect(failed).toMatch(/ERROR:\s+22012: division by zero/);
  });

  it('copies in and out with \\copy', async () => {
    await run('/usr/bin/psql', [dsn(stack, t), '-c', 'create table psql_copy(i int, s text)']);
    const input = Array.from({ length: 1000 }, (_, i) => `${i}\trow ${i}`).join('\n') + '\n';
    const child = run('/usr/bin/psql', [dsn(stack, t), '-c', '\\copy psql_copy from stdin']);
    child.child.stdin!.end(input);
    await child;
    const { stdout } = await run('/usr/bin/psql', [dsn(stack, t), '-c', '\\copy psql_copy to stdout']);
    expect(stdout).toBe(input);
  });
});

describe('node-postgres (pg)', () => {
  it('connects over TLS with channel binding and sees the gateway BackendKeyData, not the compute one', async () => {
    const client = pgClient(stack, t, { ssl: { rejectUnauthorized: false }, enableChannelBinding: true } as never);
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number; app: string }>('select pg_backend_pid() as pid, current_setting($1) as app', ['application_name']);
      const gatewayPid = (client as unknown as { processID: number }).processID;
      expect(gatewayPid).toBeGreaterThan(0);
      expect(rows[0]!.pid).not.toBe(gatewayPid);
    } finally {
      await client.end();
    }
  });

  it('passes startup parameters to the compute (application_name, options -c)', async () => {
    const client = pgClient(stack, t, { application_name: 'gw-test-app', options: '-c statement_timeout=4321' } as never);
    await client.connect();
    try {
      const { rows } = await client.query<{ app: string; st: string }>("select current_setting('application_name') as app, current_setting('statement_timeout') as st");
      expect(rows[0]).toEqual({ app: 'gw-test-app', st: '4321ms' });
    } finally {
      await client.end();
    }
  });

  it('relays a ~100 MB result intact', async () => {
    const client = pgClient(stack, t);
    await client.connect();
    try {
      // 100 rows of 1 MiB each, every row made from its own number so corruption or reordering shows.
      const { rows } = await client.query<{ i: number; s: string }>('select i, repeat(md5(i::text), 32768) as s from generate_series(1, 100) i');
      expect(rows).toHaveLength(100);
      let total = 0;
      for (const row of rows) {
        const md5 = createHash('md5').update(String(row.i)).digest('hex');
        expect(row.s.length).toBe(1 << 20);
        expect(row.s.slice(0, 64)).toBe(md5 + md5);
        expect(row.s === md5.repeat(32768)).toBe(true);
        total += row.s.length;
      }
      expect(total).toBe(100 << 20);
    } finally {
      await client.end();
    }
  });

  it('delivers LISTEN/NOTIFY between two sessions', async () => {
    const listener = pgClient(stack, t);
    const notifier = pgClient(stack, t);
    await Promise.all([listener.connect(), notifier.connect()]);
    try {
      await listener.query('listen gw_channel');
      const got = new Promise<{ channel: string; payload?: string }>((resolve) => listener.once('notification', resolve));
      await notifier.query("notify gw_channel, 'hello through the gateway'");
      expect(await got).toMatchObject({ channel: 'gw_channel', payload: 'hello through the gateway' });
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });

  it('passes server errors through unchanged (same fields as straight from the compute)', async () => {
    const viaGateway = pgClient(stack, t);
    await viaGateway.connect();
    const direct = await directClient(stack, t);
    try {
      const errorOf = (c: typeof direct) => c.query('select * from no_such_table where x = 1').then(() => null, (e: Record<string, unknown>) => e);
      const [a, b] = await Promise.all([errorOf(viaGateway), errorOf(direct)]);
      const fields = (e: Record<string, unknown> | null) => e && { code: e.code, message: e.message, position: e.position, severity: e.severity, routine: e.routine, file: e.file };
      expect(fields(a)).toEqual(fields(b));
      expect(a?.code).toBe('42P01');
      // The session is still usable after an error.
      expect((await viaGateway.query('select 2 as two')).rows[0]).toEqual({ two: 2 });
    } finally {
      await Promise.all([viaGateway.end(), direct.end()]);
    }
  });
});

describe('postgres.js', () => {
  // The gateway reads each client socket into one reused buffer, and pauses it while the
  // compute socket pushes back: a COPY this large goes through both, and no byte may change.
  it.each(['session', 'transaction'] as const)('a ~40 MB COPY in arrives byte for byte in %s mode', async (mode) => {
    const target = mode === 'session' ? t : await createTenantDb(stack);
    if (mode === 'transaction') await setPool(stack, target, 'transaction', 2);
    const sql = postgres({ host: '127.0.0.1', port: stack.gateway!.port, user: target.tenant.pg_user, password: target.password, database: target.db.name, max: 1, onnotice: () => undefined });
    try {
      await sql`create table big_copy(i int, s text)`;
      const sent = createHash('md5');
      const seed = randomBytes(1 << 16).toString('hex');
      function* rows(): Generator<string> {
        for (let block = 0; block < 400; block++) {
          let text = '';
          for (let r = 0; r < 1000; r++) {
            const i = block * 1000 + r;
            const s = seed.substr((i * 7919) % (seed.length - 80), 80);
            sent.update(s);
            text += `${i}\t${s}\n`;
          }
          yield text;
        }
      }
      await pipeline(Readable.from(rows()), await sql`copy big_copy from stdin`.writable());
      const [got] = await sql`select count(*)::int as n, md5(string_agg(s, '' order by i)) as md5 from big_copy`;
      expect(got).toEqual({ n: 400_000, md5: sent.digest('hex') });
      await sql`drop table big_copy`;
    } finally {
      await sql.end();
    }
  }, 120_000);

  it('queries, pipelines, copies in and out, and cancels a pg_sleep with the gateway key', async () => {
    const sql = postgres({ host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user, password: t.password, database: t.db.name, max: 2, onnotice: () => undefined });
    try {
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`select ${i}::int as i`));
      expect(many.map((r) => r[0]!.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));

      await sql`create table pjs_copy(i int, s text)`;
      const rows = Array.from({ length: 5000 }, (_, i) => `${i}\tline ${i}\n`);
      await pipeline(Readable.from(rows), await sql`copy pjs_copy from stdin`.writable());
      expect(await sql`select count(*)::int as n, sum(i)::int as s from pjs_copy`).toEqual([{ n: 5000, s: (4999 * 5000) / 2 }]);
      let out = '';
      await pipeline(
        await sql`copy (select * from pjs_copy order by i) to stdout`.readable(),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            out += chunk.toString();
            done();
          },
        }),
      );
      expect(out).toBe(rows.join(''));

      const started = Date.now();
      const sleeping = sql`select pg_sleep(30)`;
      const outcome = sleeping.then(() => 'finished', (e: { code?: string }) => e.code);
      await new Promise((r) => setTimeout(r, 500));
      sleeping.cancel();
      expect(await outcome).toBe('57014'); // query_canceled
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await sql.end();
    }
  });
});

describe('pgbench', () => {
  it('initialises and runs a short select-only load through the gateway', async () => {
    const url = dsn(stack, t);
    await run('/usr/bin/pgbench', ['-i', '-s', '1', '-q', url]);
    const { stdout } = await run('/usr/bin/pgbench', ['-S', '-c', '4', '-j', '2', '-T', '3', '-n', url]);
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    expect(tps).toBeGreaterThan(0);
    expect(stdout).toMatch(/number of failed transactions: 0/);
  });
});

describe('stopping', () => {
  it('a gateway that stops ends its relayed sessions and their compute connections', async () => {
    const extra = await startGateway({ ...stack.ctx, config: { ...stack.config, gatewayPort: 0 } });
    const client = pgClient(stack, t, { port: extra.port });
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.on('error', () => undefined);
    await client.connect();
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    await extra.stop();
    await ended;
    const direct = await directClient(stack, t);
    await waitFor('the compute session gone', async () => (await direct.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0, 5_000);
    await direct.end();
  });
});

describe('metrics', () => {
  it('counts connections, wakes and relayed bytes', async () => {
    const text = await metricsText(stack);
    expect(sample(text, 'pgwake_gateway_connections_total', { outcome: 'relayed' })).toBeGreaterThanOrEqual(10);
    expect(sample(text, 'pgwake_gateway_wake_seconds_count', { kind: 'cold' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgwake_gateway_wake_seconds_count', { kind: 'warm' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'pgwake_gateway_bytes_total', { direction: 'compute_to_client' })).toBeGreaterThan(100 << 20);
    expect(sample(text, 'pgwake_gateway_bytes_total', { direction: 'client_to_compute' })).toBeGreaterThan(0);
    // Every client of this file is gone, so nothing is open any more.
    await waitFor('open connections back to 0', async () => sample(await metricsText(stack), 'pgwake_gateway_connections') === 0);
  });
});
