import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, giveTo, initDataDir, PostgresServer, postgresBinDir, processOwnerFor } from '../../core/postgres/index.js';
import { spawn } from 'node:child_process';
import { createTenantDb, dbRow, pgClient, run, startGatewayStack, waitFor, type TenantDb } from '../gateway/support.js';
import { ApiClient, expectError } from '../control-api/client.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/**
 * Chaos against a real stack while clients write through the gateway. A writer
 * records every commit the gateway acknowledged; after the fault, every one of
 * them must be in the db.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers that insert one row per transaction through the gateway and remember what was acknowledged. */
class LedgerWriters {
  readonly acked = new Set<string>();
  readonly errors: string[] = [];
  #stop = false;
  #loops: Promise<void>[] = [];

  constructor(private readonly connect: () => pg.Client) {}

  start(writers: number): void {
    for (let w = 0; w < writers; w++) this.#loops.push(this.#loop(w));
  }

  async #loop(w: number): Promise<void> {
    let n = 0;
    while (!this.#stop) {
      const client = this.connect();
      // What ended the connection while idle between queries (the query then fails as "not queryable").
      client.on('error', (e: Error & { code?: string }) => this.errors.push(`${e.code ?? '-'} ${e.message}`));
      try {
        await client.connect();
        while (!this.#stop) {
          const id = `${w}-${n++}`;
          await client.query('insert into ledger (id) values ($1)', [id]);
          this.acked.add(id); // acknowledged: the commit returned
        }
      } catch (err) {
        const e = err as Error & { code?: string };
        this.errors.push(`${e.code ?? '-'} ${e.message}`);
        await sleep(50);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#loops);
  }

  /** Waits until `more` further commits were acknowledged. */
  async progress(more: number, timeoutMs = 30_000): Promise<void> {
    const target = this.acked.size + more;
    await waitFor(`${more} more acknowledged commits`, async () => this.acked.size >= target, timeoutMs);
  }
}

async function missingFrom(client: pg.Client, acked: Set<string>): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>('select id from ledger');
  const present = new Set(rows.map((r) => r.id));
  return [...acked].filter((id) => !present.has(id));
}

describe('chaos: kill -9 of a compute under a write load', () => {
  let stack: TestStack;
  let t: TenantDb;
  afterAll(async () => {
    await stack?.destroy();
  });

  it('clients get an error, the next connection wakes the db, every acknowledged commit is there, the open transaction only if its commit was acknowledged', async () => {
    stack = await startGatewayStack();
    t = await createTenantDb(stack);
    const setup = pgClient(stack, t);
    await setup.connect();
    await setup.query('create table ledger (id text primary key, at timestamptz default now())');
    await setup.end();

    // pgbench's read-write load through the gateway beside the writers that record what was acknowledged.
    const pgbenchEnv = { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' };
    const pgbenchArgs = ['-h', '127.0.0.1', '-p', String(stack.gateway!.port), '-U', t.tenant.pg_user, t.db.name];
    await run('pgbench', ['-i', '-q', ...pgbenchArgs], { env: pgbenchEnv });
    const pgbench = spawn('pgbench', ['-n', '-c', '4', '-T', '60', ...pgbenchArgs], { env: pgbenchEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let pgbenchOutput = '';
    pgbench.stdout!.on('data', (d: Buffer) => (pgbenchOutput += d.toString()));
    pgbench.stderr!.on('data', (d: Buffer) => (pgbenchOutput += d.toString()));
    const pgbenchDone = new Promise<number | null>((resolve) => pgbench.once('exit', resolve));

    const writers = new LedgerWriters(() => pgClient(stack, t));
    writers.start(4);
    await writers.progress(200);

    // A transaction open at the moment of the kill: its client gets an error, its row is not kept.
    const open = pgClient(stack, t);
    open.on('error', () => undefined);
    await open.connect();
    await open.query('begin');
    await open.query("insert into ledger (id) values ('uncommitted')");

    const { pid } = stack.autoscaler!.describeCompute(t.db.id);
    expect(pid).toBeGreaterThan(0);
    const ackedAtKill = writers.acked.size;
    process.kill(pid!, 'SIGKILL');

    // A backend can outlive its postmaster for a moment (it notices the death at its next wait), so the
    // commit may still be acknowledged: then it must be kept, like any acknowledged commit; else it must not be.
    const openCommitted = await open.query('commit').then(() => true, () => false);
    await open.end().catch(() => undefined);

    // The writers see errors, reconnect, and the gateway wakes the db again.
    await writers.progress(200, 60_000);
    await writers.stop();
    expect(writers.errors.length).toBeGreaterThan(0);
    // pgbench's clients lose their sessions with the compute: it stops with an error, as any client would.
    const pgbenchCode = await Promise.race([pgbenchDone, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 30_000))]);
    pgbench.kill();
    expect(pgbenchCode, pgbenchOutput).not.toBe(0);
    expect(pgbenchCode, pgbenchOutput).not.toBe('still running');
    expect(pgbenchOutput).toMatch(/terminating connection|server closed the connection|aborted/i);
    const newPid = stack.autoscaler!.describeCompute(t.db.id).pid;
    expect(newPid).toBeGreaterThan(0);
    expect(newPid).not.toBe(pid);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');

    const check = pgClient(stack, t);
    await check.connect();
    expect(await missingFrom(check, writers.acked)).toEqual([]);
    expect((await check.query("select count(*)::int as n from ledger where id = 'uncommitted'")).rows[0].n).toBe(openCommitted ? 1 : 0);
    await check.end();
    console.log(`chaos/compute: pgbench exited ${pgbenchCode}; ${ackedAtKill} commits acknowledged before kill -9, ${writers.acked.size} in all, all present; the transaction open at the kill ${openCommitted ? 'committed (kept)' : 'failed (not kept)'}; client errors: ${writers.errors.length} (${[...new Set(writers.errors)].join(' | ')})`);
  }, 120_000);
});

describe('chaos: the catalog Postgres stops and comes back', () => {
  let stack: TestStack;
  let catalogDir: string;
  let catalog: PostgresServer | undefined;
  afterAll(async () => {
    await stack?.destroy();
    await catalog?.stop('immediate').catch(() => undefined);
    if (catalogDir) await rm(catalogDir, { recursive: true, force: true });
  });

  it('running dbs keep serving their sessions; the control API answers 503 in the error shape, then recovers; new connections work again', async () => {
    // A catalog of the test's own (as with CATALOG_URL), so the test can stop and restart it on the same port.
    catalogDir = await mkdtemp(path.join(tmpdir(), 'pgwake-chaos-catalog-'));
    await chmod(catalogDir, 0o755);
    const owner = processOwnerFor('nobody');
    await giveTo(owner, catalogDir);
    const binDir = postgresBinDir(undefined);
    const dataDir = path.join(catalogDir, 'data');
    const password = 'chaos-catalog-password';
    await initDataDir({ binDir, dataDir, owner, superuser: 'pgwake_admin', superuserPassword: password });
    const port = await freePort();
    const startCatalog = () => PostgresServer.start({ binDir, dataDir, host: '127.0.0.1', port, owner, startTimeoutMs: 20_000, settings: { max_connections: '100', shared_buffers: '32MB' } });
    catalog = await startCatalog();
    stack = await startTestStack({ CATALOG_URL: `postgres://pgwake_admin:${password}@127.0.0.1:${port}/postgres` });
    const api = await new ApiClient(`http://127.0.0.1:${stack.controlApi!.port}`).signUp('chaos');
    expect((await api.get('/v2/tenants')).status).toBe(200);

    const t = await createTenantDb(stack);
    const session = pgClient(stack, t);
    session.on('error', (e) => console.log(`chaos/catalog: the open session got ${e.message}`));
    await session.connect();
    await session.query('create table ledger (id text primary key)');
    const writers = new LedgerWriters(() => pgClient(stack, t));
    writers.start(2);
    await writers.progress(100);

    await catalog.stop('fast');
    catalog = undefined;
    const ackedAtStop = writers.acked.size;

    // The compute does not need the catalog: the open session keeps working, and so do the writers' open sessions.
    for (let i = 0; i < 20; i++) await session.query('insert into ledger (id) values ($1)', [`during-${i}`]);
    await writers.progress(100);

    const down = await api.get('/v2/tenants');
    const err = expectError(down, 503, 'unavailable');
    expect(err.message).toMatch(/catalog/i);

    // A new client cannot be routed without the catalog: a clear error, not a hang.
    const fresh = pgClient(stack, t, { connectionTimeoutMillis: 20_000 });
    fresh.on('error', () => undefined);
    const freshErr = (await fresh.connect().then(() => null, (e: unknown) => e)) as (Error & { code?: string }) | null;
    await fresh.end().catch(() => undefined);
    console.log(`chaos/catalog: a new client while the catalog is down: ${freshErr ? `${freshErr.code ?? '-'} ${freshErr.message}` : 'connected'}`);
    expect(freshErr?.code).toBe('57P03');
    expect(freshErr?.message).toMatch(/catalog is unavailable/);

    catalog = await startCatalog();
    await waitFor('the control API to answer again', async () => (await api.get('/v2/tenants')).status === 200, 30_000);
    const again = await waitFor('a new gateway connection', async () => {
      const c = pgClient(stack, t);
      c.on('error', () => undefined);
      return c.connect().then(() => c, () => null);
    }, 30_000);
    await writers.progress(50);
    await writers.stop();
    expect(await missingFrom(again, writers.acked)).toEqual([]);
    expect((await again.query("select count(*)::int as n from ledger where id like 'during-%'")).rows[0].n).toBe(20);
    await again.end();
    await session.end();
    console.log(`chaos/catalog: ${ackedAtStop} commits before the stop, ${writers.acked.size} in all (writers kept writing while it was down), all present; writer errors: ${writers.errors.length}`);
  }, 120_000);
});
