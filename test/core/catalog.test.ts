import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Catalog,
  createScramVerifier,
  formatScramVerifier,
  InProcessCoordinator,
  INTERNAL_SUPERUSER,
  loadOrCreateSecretKey,
  postgresBinDir,
  processOwnerFor,
  SecretBox,
  startEmbeddedCatalog,
  type DbRecord,
  type EmbeddedCatalog,
} from '../../core/index.js';

let dataDir: string;
let embedded: EmbeddedCatalog;
let catalog: Catalog;
const coordinator = new InProcessCoordinator();
let secrets: SecretBox;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'pgwake-catalog-'));
  await chmod(dataDir, 0o755);
  secrets = new SecretBox(loadOrCreateSecretKey(undefined, dataDir));
  embedded = await startEmbeddedCatalog({ dataDir, binDir: postgresBinDir(process.env.PG_BIN), owner: processOwnerFor('nobody'), secrets, startTimeoutMs: 20_000 });
  catalog = await Catalog.open(embedded.url, coordinator);
});

afterAll(async () => {
  await catalog?.close();
  await embedded?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function newDb(): Promise<DbRecord> {
  const { account } = await catalog.accounts.create({ name: 'acme' });
  const tenant = await catalog.tenants.create({ accountId: account.id, name: 'shop', pgUser: `shop_${account.id.slice(5)}`, passwordSealed: secrets.seal('pw'), scramVerifier: formatScramVerifier(createScramVerifier('pw')) });
  return catalog.dbs.create({ accountId: account.id, tenantId: tenant.id, name: 'app', size: 'L1', suspendTimeoutSeconds: 300, poolMode: 'session', poolSize: null });
}

describe('catalog', () => {
  it('migrates once: a second open applies nothing and keeps the data', async () => {
    const db = await newDb();
    const again = await Catalog.open(embedded.url, coordinator);
    expect((await again.dbs.byId(db.id))?.name).toBe('app');
    await again.close();
  });

  it('authenticates an API key by its hash and refuses anything else', async () => {
    const { account, apiKey } = await catalog.accounts.create({ name: 'k' });
    expect((await catalog.accounts.authenticate(apiKey.key))?.account.id).toBe(account.id);
    expect(await catalog.accounts.authenticate(apiKey.key + 'x')).toBeNull();
    expect(await catalog.accounts.authenticate('nonsense')).toBeNull();
    const { rows } = await catalog.pool.query('SELECT count(*)::int AS n FROM api_keys WHERE prefix = $1 AND key_hash IS NOT NULL', [apiKey.record.prefix]);
    expect(rows[0].n).toBe(1);
    const { rows: plain } = await catalog.pool.query("SELECT count(*)::int AS n FROM api_keys WHERE encode(key_hash, 'escape') LIKE '%' || $1 || '%'", [apiKey.key.slice(4)]);
    expect(plain[0].n).toBe(0);
  });

  it('a new db has every lifecycle field, with nulls where unset', async () => {
    const db = await newDb();
    expect(db).toMatchObject({ state: 'creating', size: 'L1', current_profile: 'L1', target_profile: 'L1', scale_state: 'STABLE', current_scale: 0, target_scale: 0, freeze_new_checkouts: false, lease_control_epoch: 0, candidate_profile: null, scale_failure_reason: null, tenant: 'shop' });
    expect(typeof db.created_at).toBe('string');
  });

  it('transitions are compare-and-set on state and epoch, and each write is an event and a publish', async () => {
    const db = await newDb();
    const heard: string[] = [];
    const off = coordinator.onDbChanged(({ db: d }) => d.id === db.id && heard.push(d.state));
    expect(await catalog.dbs.transition(db.id, ['running'], 'suspending')).toBeNull();
    const suspended = await catalog.dbs.transition(db.id, ['creating'], 'suspended');
    expect(suspended?.state).toBe('suspended');
    expect(await catalog.dbs.update(db.id, { lease_control_epoch: 5 }, { epoch: 1 })).toBeNull();
    expect((await catalog.dbs.update(db.id, { lease_control_epoch: 5 }, { epoch: 0 }))?.lease_control_epoch).toBe(5);
    off();
    expect(heard).toEqual(['suspended', 'suspended']);
    const events = await catalog.events.since(db.account_id, 0);
    expect(events.map((e) => e.type)).toEqual(['tenant.created', 'db.created', 'db.suspended', 'db.updated']);
    expect(events[2]!.data).not.toHaveProperty('compute_port');
    expect(events[2]!.data).not.toHaveProperty('compute_socket_path');
    expect(suspended).toHaveProperty('compute_socket_path', null);
  });

  it('makes SCRAM verifiers that a real Postgres accepts for login', async () => {
    const admin = new pg.Client({ connectionString: embedded.url });
    await admin.connect();
    await admin.query(`CREATE ROLE verifier_check LOGIN PASSWORD '${formatScramVerifier(createScramVerifier('right horse'))}'`);
    await admin.end();
    const url = new URL(embedded.url);
    const login = (password: string) => {
      const c = new pg.Client({ host: url.hostname, port: Number(url.port), user: 'verifier_check', database: 'postgres', password });
      return c.connect().then(() => c.end());
    };
    await expect(login('right horse')).resolves.toBeUndefined();
    await expect(login('wrong horse')).rejects.toThrow(/password authentication failed/);
    // The catalog itself admits only its internal superuser's password.
    const intruder = new pg.Client({ host: url.hostname, port: Number(url.port), user: INTERNAL_SUPERUSER, database: 'postgres', password: 'guess' });
    await expect(intruder.connect()).rejects.toThrow(/password authentication failed/);
  });
});
