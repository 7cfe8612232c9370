import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_SUPERUSER, PROFILES } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { connectAsTenant, createTenantDb, dbEventsOfType, dbRow, postmastersUnder, type TenantDb } from './fixtures.js';

describe('autoscaler: provision, wake, suspend, delete on real computes', () => {
  let stack: TestStack;
  let t: TenantDb;
  const control = (action: 'provision' | 'wake' | 'suspend' | 'delete', dbId = t.db.id) => stack.ctx.coordinator.requestControl({ action, dbId }, 30_000);
  const computeDir = (dbId: string) => path.join(stack.dataDir, 'computes', dbId);

  beforeAll(async () => {
    stack = await startTestStack({}, ['autoscaler']);
    t = await createTenantDb(stack);
  });
  afterAll(async () => {
    await stack?.destroy();
  });

  it('provisions a db from the template and leaves it suspended with no process', async () => {
    expect(t.db.state).toBe('creating');
    await control('provision');
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ state: 'suspended', current_scale: 0, target_scale: 0, compute_host: null, compute_port: null, failure_reason: null });
    expect(existsSync(path.join(computeDir(db.id), 'data', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(stack.dataDir, 'computes', 'template', 'PG_VERSION'))).toBe(true);
    expect(stack.autoscaler!.describeCompute(db.id).running).toBe(false);
    expect(await postmastersUnder(computeDir(db.id))).toEqual([]);
    // Asking again changes nothing.
    await control('provision');
    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
  });

  it('wakes the db; the tenant role writes to its own database', async () => {
    await control('wake');
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ state: 'running', current_scale: 1, target_scale: 1, compute_host: '127.0.0.1' });
    expect(db.compute_port).toBeGreaterThan(0);
    expect(db.worker_id).toMatch(/^local\//);
    // Its Unix-domain socket is published beside host and port: the file Postgres made in its data dir, a socket.
    expect(db.compute_socket_path).toBe(path.join(computeDir(db.id), 'data', 'socket', `.s.PGSQL.${db.compute_port}`));
    expect(statSync(db.compute_socket_path!).isSocket()).toBe(true);
    const status = stack.autoscaler!.describeCompute(db.id);
    expect(status.running).toBe(true);
    expect(await postmastersUnder(computeDir(db.id))).toEqual([status.pid]);

    const client = await connectAsTenant(stack, t);
    try {
      const who = await client.query<{ user: string; db: string; owner: string }>(
        'SELECT current_user AS user, current_database() AS db, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()',
      );
      expect(who.rows[0]).toEqual({ user: t.tenant.pg_user, db: 'app', owner: t.tenant.pg_user });
      await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
      await client.query("INSERT INTO notes VALUES (1, 'before suspend')");
    } finally {
      await client.end();
    }
  });

  it('a wake of a running db returns at once and starts nothing', async () => {
    const startsBefore = await dbEventsOfType(stack, t, 'db.starting');
    const t0 = performance.now();
    await control('wake');
    expect(performance.now() - t0).toBeLessThan(200);
    expect(await dbEventsOfType(stack, t, 'db.starting')).toBe(startsBefore);
  });

  it('refuses logins without the internal credential', async () => {
    const db = await dbRow(stack, t.db.id);
    const attempt = async (user: string, password: string) => {
      const c = new pg.Client({ host: db.compute_host!, port: db.compute_port!, user, password, database: 'app' });
      try {
        await c.connect();
        await c.end();
        return 'connected';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    expect(await attempt(t.tenant.pg_user, 'not-the-password')).toBe('28P01');
    expect(await attempt('postgres', 'postgres')).toBe('28P01');
    expect(await attempt(INTERNAL_SUPERUSER, 'guess')).toBe('28P01');
    // The tenant's own client password is for the gateway, not the compute.
    expect(await attempt(t.tenant.pg_user, stack.ctx.secrets.open(t.tenant.password_sealed))).toBe('28P01');
  });

  it('the compute listens on loopback only, asks SCRAM of everyone, and the tenant role is no superuser', async () => {
    const db = await dbRow(stack, t.db.id);
    const admin = new pg.Client({ host: db.compute_host!, port: db.compute_port!, user: INTERNAL_SUPERUSER, password: stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), database: 'postgres' });
    await admin.connect();
    try {
      const hba = await admin.query<{ auth_method: string }>('SELECT DISTINCT auth_method FROM pg_hba_file_rules');
      expect(hba.rows).toEqual([{ auth_method: 'scram-sha-256' }]);
      expect((await admin.query('SHOW listen_addresses')).rows[0]).toEqual({ listen_addresses: '127.0.0.1' });
      expect((await admin.query('SHOW shared_buffers')).rows[0]).toEqual({ shared_buffers: PROFILES.L1.postgresSettings.shared_buffers });
      const role = await admin.query<{ rolsuper: boolean; rolcanlogin: boolean; scram: boolean }>(
        "SELECT rolsuper, rolcanlogin, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname = $1",
        [t.tenant.pg_user],
      );
      expect(role.rows).toEqual([{ rolsuper: false, rolcanlogin: true, scram: true }]);
      // The template's spare database became the tenant's; nothing else was added.
      const dbs = await admin.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY datname');
      expect(dbs.rows.map((r) => r.datname)).toEqual(['app', 'postgres', 'template0', 'template1']);
    } finally {
      await admin.end();
    }
  });

  it('suspends: fast shutdown, no process, route cleared', async () => {
    const pid = stack.autoscaler!.describeCompute(t.db.id).pid;
    await control('suspend');
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ state: 'suspended', current_scale: 0, target_scale: 0, compute_host: null, compute_port: null, compute_socket_path: null, worker_id: null });
    expect(stack.autoscaler!.describeCompute(t.db.id).running).toBe(false);
    expect(await postmastersUnder(computeDir(t.db.id))).toEqual([]);
    expect(pid).not.toBeNull();
  });

  it('wakes again with the committed row still there', async () => {
    await control('wake');
    const client = await connectAsTenant(stack, t);
    try {
      const { rows } = await client.query('SELECT id, body FROM notes');
      expect(rows).toEqual([{ id: 1, body: 'before suspend' }]);
    } finally {
      await client.end();
    }
  });

  it('many concurrent wakes of a suspended db make one start, and all succeed', async () => {
    await control('suspend');
    const startsBefore = await dbEventsOfType(stack, t, 'db.starting');
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => control('wake')));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await dbEventsOfType(stack, t, 'db.starting')).toBe(startsBefore + 1);
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
  });

  it('a wake that arrives while the db is suspending waits and then starts it', async () => {
    const suspended = control('suspend');
    // Let the suspend begin before the wake arrives.
    await new Promise<void>((resolve) => {
      const off = stack.ctx.coordinator.onDbChanged(({ db }) => {
        if (db.id === t.db.id && db.state === 'suspending') {
          off();
          resolve();
        }
      });
    });
    const woken = control('wake');
    await expect(suspended).resolves.toBeUndefined();
    await expect(woken).resolves.toBeUndefined();
    expect((await dbRow(stack, t.db.id)).state).toBe('running');
    const client = await connectAsTenant(stack, t);
    try {
      expect((await client.query('SELECT count(*)::int AS n FROM notes')).rows[0]).toEqual({ n: 1 });
    } finally {
      await client.end();
    }
  });

  it('deletes: stops the compute, removes its data, marks it deleted', async () => {
    expect(stack.autoscaler!.describeCompute(t.db.id).running).toBe(true);
    await stack.ctx.catalog.dbs.transition(t.db.id, ['running'], 'deleting');
    await control('delete');
    const db = await dbRow(stack, t.db.id);
    expect(db).toMatchObject({ state: 'deleted', current_scale: 0, compute_port: null });
    expect(existsSync(computeDir(t.db.id))).toBe(false);
    expect(await postmastersUnder(computeDir(t.db.id))).toEqual([]);
    await expect(control('wake')).rejects.toThrow(/deleted/);
  });

  it('a provision that fails leaves the db failed with a reason; a later wake provisions and starts it', async () => {
    const other = await createTenantDb(stack, { dbName: 'second' });
    // A file where the db's directory must go: the copy cannot succeed.
    const { writeFile, rm } = await import('node:fs/promises');
    await writeFile(computeDir(other.db.id), 'in the way');
    await expect(control('provision', other.db.id)).rejects.toThrow(/provision/);
    expect(await dbRow(stack, other.db.id)).toMatchObject({ state: 'failed', failure_reason: 'provision_failed', current_scale: 0 });
    await rm(computeDir(other.db.id));
    await control('wake', other.db.id);
    expect(await dbRow(stack, other.db.id)).toMatchObject({ state: 'running', failure_reason: null });
    const client = await connectAsTenant(stack, other);
    try {
      expect((await client.query('SELECT current_database() AS db')).rows[0]).toEqual({ db: 'second' });
    } finally {
      await client.end();
    }
  });

  it('a db named like one the cluster comes with (postgres) is owned by the tenant', async () => {
    const named = await createTenantDb(stack, { dbName: 'postgres' });
    await control('provision', named.db.id);
    await control('wake', named.db.id);
    const client = await connectAsTenant(stack, named);
    try {
      await client.query('CREATE TABLE mine (v int)');
      const { rows } = await client.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()');
      expect(rows).toEqual([{ owner: named.tenant.pg_user }]);
      const spare = await client.query("SELECT 1 FROM pg_database WHERE datname = 'pgwake_tenant'");
      expect(spare.rowCount).toBe(0);
    } finally {
      await client.end();
    }
    await control('suspend', named.db.id);
  });

  it('exports its metrics', async () => {
    const text = await stack.ctx.metrics.metrics();
    expect(text).toMatch(/pgwake_compute_starts_total\{result="ok"\} [1-9]/);
    expect(text).toMatch(/pgwake_compute_start_seconds_count [1-9]/);
    expect(text).toMatch(/pgwake_suspends_total\{reason="request"\} [1-9]/);
    expect(text).toMatch(/pgwake_db_provision_seconds_count\{result="ok"\} [1-9]/);
    expect(text).toMatch(/pgwake_dbs\{state="running"\} 1/);
    expect(text).toMatch(/pgwake_computes_running 1/);
  });
});
