import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { createScramVerifier, formatScramVerifier, randomSecret, type DbRecord, type ProfileName, type TenantRecord } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';

export const run = promisify(execFile);

export interface TenantDb {
  accountId: string;
  tenant: TenantRecord;
  db: DbRecord;
  password: string;
}

let seq = 0;

/** The stack the gateway's end-to-end tests run on: the real autoscaler (it starts computes) and the gateway. */
export function startGatewayStack(env: Record<string, string> = {}): Promise<TestStack> {
  return startTestStack(env, ['autoscaler', 'gateway']);
}

/** An account, a tenant and a db, provisioned by the autoscaler (so `suspended`, as the control API leaves it). */
export async function createTenantDb(stack: TestStack, o: { dbName?: string; suspendTimeoutSeconds?: number; provision?: boolean; size?: ProfileName } = {}): Promise<TenantDb> {
  const n = `${process.pid}_${++seq}`;
  const { catalog, secrets, coordinator } = stack.ctx;
  const { account } = await catalog.accounts.create({ name: `gw-acct-${n}` });
  const password = randomSecret();
  const tenant = await catalog.tenants.create({
    accountId: account.id,
    name: `gw-tenant-${n}`.replace(/_/g, '-'),
    pgUser: `gw_user_${n}`,
    passwordSealed: secrets.seal(password),
    scramVerifier: formatScramVerifier(createScramVerifier(password)),
  });
  let db = await catalog.dbs.create({
    accountId: account.id,
    tenantId: tenant.id,
    name: o.dbName ?? 'app',
    size: o.size ?? 'L1',
    suspendTimeoutSeconds: o.suspendTimeoutSeconds ?? 300,
    poolMode: 'session',
    poolSize: null,
  });
  if (o.provision !== false) {
    await coordinator.requestControl({ action: 'provision', dbId: db.id }, 60_000);
    db = (await catalog.dbs.byId(db.id))!;
  }
  return { accountId: account.id, tenant, db, password };
}

export function dsn(stack: TestStack, t: TenantDb, o: { sslmode?: 'disable' | 'require'; password?: string; user?: string; database?: string; extra?: string } = {}): string {
  const user = encodeURIComponent(o.user ?? t.tenant.pg_user);
  const password = encodeURIComponent(o.password ?? t.password);
  const database = encodeURIComponent(o.database ?? t.db.name);
  const extra = o.extra ? `&${o.extra}` : '';
  return `postgresql://${user}:${password}@127.0.0.1:${stack.gateway!.port}/${database}?sslmode=${o.sslmode ?? 'disable'}${extra}`;
}

export function pgClient(stack: TestStack, t: TenantDb, o: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user, password: t.password, database: t.db.name, ...o });
}

export async function dbRow(stack: TestStack, id: string): Promise<DbRecord> {
  const db = await stack.ctx.catalog.dbs.byId(id);
  if (!db) throw new Error(`no db ${id}`);
  return db;
}

/** Straight to the running compute as the tenant role, with the credential only the gateway holds: to compare with what the gateway relays. */
export async function directClient(stack: TestStack, t: TenantDb): Promise<pg.Client> {
  const db = await dbRow(stack, t.db.id);
  if (db.state !== 'running') throw new Error(`db ${db.id} is ${db.state}`);
  const client = new pg.Client({ host: db.compute_host!, port: db.compute_port!, user: t.tenant.pg_user, password: stack.ctx.secrets.internalRolePassword(t.tenant.pg_user), database: db.name });
  await client.connect();
  return client;
}

/** How many times the db was started: its `db.running` events, as the catalog recorded them. */
export async function startsOf(stack: TestStack, t: TenantDb): Promise<number> {
  const events = await stack.ctx.catalog.events.since(t.accountId, 0, 10_000);
  return events.filter((e) => e.db_id === t.db.id && e.type === 'db.running').length;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Fields of an ErrorResponse, by their one-letter tags. */
export type ErrorFields = Record<string, string>;

/**
 * A raw TCP conversation with the gateway: send bytes, then read everything until
 * the gateway closes (or `timeoutMs`). For inputs no real client would send.
 */
export async function rawExchange(port: number, send: (socket: net.Socket) => void | Promise<void>, timeoutMs = 5_000): Promise<{ data: Buffer; closed: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const closing = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await send(socket);
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([closing.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
  clearTimeout(timer);
  socket.destroy();
  return { data: Buffer.concat(chunks), closed };
}

/** The ErrorResponse messages in `data` (other messages skipped). */
export function errorsIn(data: Buffer): ErrorFields[] {
  const out: ErrorFields[] = [];
  let at = 0;
  while (at + 5 <= data.length) {
    const type = String.fromCharCode(data[at]!);
    const len = data.readInt32BE(at + 1);
    const body = data.subarray(at + 5, at + 1 + len);
    if (type === 'E') {
      const fields: ErrorFields = {};
      let i = 0;
      while (i < body.length && body[i] !== 0) {
        const tag = String.fromCharCode(body[i]!);
        const end = body.indexOf(0, i + 1);
        fields[tag] = body.toString('utf8', i + 1, end);
        i = end + 1;
      }
      out.push(fields);
    }
    at += 1 + len;
  }
  return out;
}

export function startupPacket(params: Record<string, string>, version = 196608): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(version, 4);
  return Buffer.concat([head, body]);
}

export async function metricsText(stack: TestStack): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${stack.metricsPort}/metrics`);
  return res.text();
}

/** The value of one sample in Prometheus text, or 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[3] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w)) && (want.length > 0 || have.length === 0)) return Number(m[4]);
  }
  return 0;
}

/** Puts the db in `mode` with `size` server connections, as a PATCH would (the gateway hears it through the coordinator). */
export async function setPool(stack: TestStack, t: TenantDb, mode: 'session' | 'transaction', size: number | null): Promise<DbRecord> {
  const db = await stack.ctx.catalog.dbs.update(t.db.id, { pool_mode: mode, pool_size: size });
  if (!db) throw new Error(`no db ${t.db.id}`);
  t.db = db;
  return db;
}

/** The tenant role's backends on the compute, the asking one left out. */
export async function tenantBackends(direct: pg.Client, t: TenantDb): Promise<number> {
  const { rows } = await direct.query<{ n: number }>('select count(*)::int as n from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()', [t.tenant.pg_user]);
  return rows[0]!.n;
}

/** This stack's gateway's last report for a db, as the autoscaler reads it. */
export async function gatewayReport(stack: TestStack, dbId: string): Promise<import('../../core/index.js').DbActivity | undefined> {
  const reports = await stack.ctx.coordinator.gatewayReports();
  return reports.find((r) => r.gatewayId === stack.gateway!.gatewayId)?.dbs[dbId];
}
