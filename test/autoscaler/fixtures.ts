import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createScramVerifier, formatScramVerifier, randomSecret, type DbRecord, type PoolMode, type TenantRecord } from '../../core/index.js';
import type { Stack } from '../../bin/stack.js';

export interface TenantDb {
  accountId: string;
  tenant: TenantRecord;
  db: DbRecord;
}

let seq = 0;

/** An account, a tenant and a db in `creating`, written to the catalog directly (as the control API would). */
export async function createTenantDb(stack: Stack, o: { suspendTimeoutSeconds?: number; poolMode?: PoolMode; dbName?: string } = {}): Promise<TenantDb> {
  const n = `${process.pid}-${++seq}`;
  const { catalog, secrets } = stack.ctx;
  const { account } = await catalog.accounts.create({ name: `acct-${n}` });
  const password = randomSecret();
  const tenant = await catalog.tenants.create({
    accountId: account.id,
    name: `tenant-${n}`,
    pgUser: `u_${n.replace(/-/g, '_')}`,
    passwordSealed: secrets.seal(password),
    scramVerifier: formatScramVerifier(createScramVerifier(password)),
  });
  const db = await catalog.dbs.create({
    accountId: account.id,
    tenantId: tenant.id,
    name: o.dbName ?? 'app',
    size: 'L1',
    suspendTimeoutSeconds: o.suspendTimeoutSeconds ?? 300,
    poolMode: o.poolMode ?? 'session',
    poolSize: null,
  });
  return { accountId: account.id, tenant, db };
}

export async function dbRow(stack: Stack, id: string): Promise<DbRecord> {
  const db = await stack.ctx.catalog.dbs.byId(id);
  if (!db) throw new Error(`no db ${id}`);
  return db;
}

/** A `pg` client on the running compute as the tenant role, with the credential only the gateway holds. */
export async function connectAsTenant(stack: Stack, t: TenantDb, password = stack.ctx.secrets.internalRolePassword(t.tenant.pg_user), user = t.tenant.pg_user): Promise<pg.Client> {
  const db = await dbRow(stack, t.db.id);
  if (db.state !== 'running' || db.compute_port === null) throw new Error(`db ${db.id} is ${db.state}, not running`);
  const client = new pg.Client({ host: db.compute_host!, port: db.compute_port, user, password, database: db.name });
  await client.connect();
  return client;
}

/** Pids of every postmaster whose data directory is under `dir`, read from /proc: what really runs, not what we track. */
export async function postmastersUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const d = args.indexOf('-D');
    if (d >= 0 && args[d + 1]?.startsWith(dir) && args[0]?.endsWith('postgres')) pids.push(Number(entry));
  }
  return pids;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export async function dbEventsOfType(stack: Stack, t: TenantDb, type: string): Promise<number> {
  const events = await stack.ctx.catalog.events.since(t.accountId, 0, 10_000);
  return events.filter((e) => e.db_id === t.db.id && e.type === type).length;
}
