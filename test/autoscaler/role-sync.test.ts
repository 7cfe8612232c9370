import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScramVerifier, formatScramVerifier, INTERNAL_SUPERUSER, randomSecret, type RoleOwner } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { connectAsTenant, createTenantDb, dbRow, type TenantDb } from './fixtures.js';

// A db's roles on its compute (autoscaler/role-sync.ts), driven as the control API
// drives it: a catalog change, then a `sync_roles` control request.
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({}, ['autoscaler']);
});
afterAll(async () => {
  await stack?.destroy();
});

const owner = (t: TenantDb): RoleOwner => ({ accountId: t.accountId, tenantId: t.tenant.id });

async function addRole(t: TenantDb, name: string, kind: 'password' | 'oauth' = 'password') {
  return stack.ctx.catalog.roles.create(owner(t), { dbId: t.db.id, name, kind, scramVerifier: kind === 'password' ? formatScramVerifier(createScramVerifier(randomSecret())) : null, identity: null });
}

async function removeRole(t: TenantDb, name: string) {
  const role = (await stack.ctx.catalog.roles.byName(t.db.id, name))!;
  await stack.ctx.catalog.roles.delete(owner(t), role);
}

const control = (action: 'provision' | 'wake' | 'suspend' | 'sync_roles', t: TenantDb) => stack.ctx.coordinator.requestControl({ action, dbId: t.db.id }, 60_000);

/** The roles pgwake made on the running compute, as the superuser sees them. */
async function computeRoles(t: TenantDb): Promise<string[]> {
  const db = await dbRow(stack, t.db.id);
  const client = new pg.Client({ host: db.compute_host!, port: db.compute_port!, user: INTERNAL_SUPERUSER, password: stack.ctx.secrets.internalRolePassword(INTERNAL_SUPERUSER), database: db.name });
  await client.connect();
  try {
    const { rows } = await client.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
        WHERE d.description LIKE 'pgwake db role %' ORDER BY 1`,
    );
    return rows.map((r) => r.rolname);
  } finally {
    await client.end();
  }
}

/** Logs in on the compute as a db role, with the password only the gateway derives. */
async function connectAsRole(t: TenantDb, role: string): Promise<pg.Client> {
  return connectAsTenant(stack, t, stack.ctx.secrets.dbRolePassword(t.db.id, role), role);
}

describe('roles on a running compute', () => {
  it('are created on request, log in with the derived password only, and dropped with their sessions ended', async () => {
    const t = await createTenantDb(stack);
    await control('provision', t);
    await control('wake', t);
    expect(await computeRoles(t)).toEqual([]);

    await addRole(t, 'reader');
    await addRole(t, 'svc', 'oauth');
    await control('sync_roles', t);
    expect(await computeRoles(t)).toEqual(['reader', 'svc']);

    const reader = await connectAsRole(t, 'reader');
    expect((await reader.query('SELECT current_user AS u, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user')).rows[0]).toEqual({ u: 'reader', rolsuper: false, rolcreaterole: false });
    // The derived password is per db: the same role name in another db has another one.
    expect(stack.ctx.secrets.dbRolePassword(t.db.id, 'reader')).not.toBe(stack.ctx.secrets.dbRolePassword('db-other', 'reader'));
    await expect(connectAsTenant(stack, t, 'wrong', 'reader')).rejects.toThrow(/password authentication failed/);

    // Something the role made passes to the tenant's login when the role goes.
    const tenant = await connectAsTenant(stack, t);
    await tenant.query('GRANT CREATE ON SCHEMA public TO reader');
    await reader.query('CREATE TABLE made_by_reader (x int)');
    const ended = new Promise<Error>((resolve) => reader.on('error', resolve));

    await removeRole(t, 'reader');
    await control('sync_roles', t);
    expect(await computeRoles(t)).toEqual(['svc']);
    expect((await ended).message).toMatch(/terminat/);
    await expect(connectAsRole(t, 'reader')).rejects.toThrow(/password authentication failed|does not exist/);
    expect((await tenant.query("SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_reader'")).rows).toEqual([{ tableowner: t.tenant.pg_user }]);
    await tenant.end();
  });

  it('tells a role made again under the same name from the old one', async () => {
    const t = await createTenantDb(stack);
    await control('provision', t);
    await control('wake', t);
    await addRole(t, 'app');
    await control('sync_roles', t);
    const old = await connectAsRole(t, 'app');
    const ended = new Promise<Error>((resolve) => old.on('error', resolve));
    await removeRole(t, 'app');
    await addRole(t, 'app');
    await control('sync_roles', t);
    expect((await ended).message).toMatch(/terminat/);
    const fresh = await connectAsRole(t, 'app');
    expect((await fresh.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await fresh.end();
  });

  it('serve requests that arrive together, each seeing the catalog as it was when asked', async () => {
    const t = await createTenantDb(stack);
    await control('provision', t);
    await control('wake', t);
    const asks: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      await addRole(t, `r${i}`);
      asks.push(control('sync_roles', t));
    }
    await Promise.all(asks);
    expect(await computeRoles(t)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    const state = await stack.ctx.catalog.roles.syncState(t.db.id);
    expect(state.syncedVersion).toBe(state.version);
  });
});

describe('roles of a compute that does not run', () => {
  it('are applied at the next wake: new ones made, deleted ones dropped', async () => {
    const t = await createTenantDb(stack);
    await control('provision', t);
    await addRole(t, 'early');
    await control('sync_roles', t); // suspended: nothing to do now
    await control('wake', t);
    expect(await computeRoles(t)).toEqual(['early']);

    await control('suspend', t);
    await removeRole(t, 'early');
    await addRole(t, 'late');
    await control('sync_roles', t);
    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
    await control('wake', t);
    expect(await computeRoles(t)).toEqual(['late']);
    const late = await connectAsRole(t, 'late');
    await late.end();
  });

  it('are in place when a db is provisioned after they were made', async () => {
    const t = await createTenantDb(stack);
    await addRole(t, 'from_the_start');
    await control('provision', t);
    expect((await stack.ctx.catalog.roles.syncState(t.db.id)).syncedVersion).toBe(1);
    await control('wake', t);
    expect(await computeRoles(t)).toEqual(['from_the_start']);
  });

  it('cost a wake no compute connection when none changed', async () => {
    const t = await createTenantDb(stack);
    await control('provision', t);
    await addRole(t, 'steady');
    await control('wake', t);
    await control('suspend', t);
    const before = await syncCounts();
    await control('wake', t);
    const after = await syncCounts();
    expect(after.applied).toBe(before.applied);
    expect(after.up_to_date).toBe(before.up_to_date + 1);
    expect(await computeRoles(t)).toEqual(['steady']);
    // A change while suspended is applied at the next wake, and counted as such.
    await control('suspend', t);
    await removeRole(t, 'steady');
    await control('wake', t);
    expect((await syncCounts()).applied).toBe(after.applied + 1);
    expect(await computeRoles(t)).toEqual([]);
  });
});

async function syncCounts(): Promise<Record<'applied' | 'up_to_date' | 'failed', number>> {
  const metric = await stack.ctx.metrics.getSingleMetric('pgwake_compute_role_syncs_total')!.get();
  const count = (outcome: string) => metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { applied: count('applied'), up_to_date: count('up_to_date'), failed: count('failed') };
}
