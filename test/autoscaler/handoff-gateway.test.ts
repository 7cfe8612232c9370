import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolMode, ProfileName } from '../../core/index.js';
import { dbRow, type TenantDb } from './fixtures.js';
import { HandoffStack } from './handoff-support.js';

/** Clients through the real gateway, each committing numbered rows one at a time and recording every acknowledged commit and every error. */
class GatewayLedger {
  #stopped = false;
  #loops: Promise<void>[] = [];
  readonly acked = new Map<number, number[]>();
  readonly errors: { client: number; code: string | undefined; message: string }[] = [];

  constructor(private readonly config: pg.ClientConfig, private readonly clients: number) {}

  async start(): Promise<void> {
    const c = new pg.Client(this.config);
    await c.connect();
    await c.query('CREATE TABLE IF NOT EXISTS ledger (client int, seq int, PRIMARY KEY (client, seq))');
    await c.end();
    for (let i = 1; i <= this.clients; i++) this.#loops.push(this.#client(i));
  }

  get acknowledged(): number {
    let n = 0;
    for (const s of this.acked.values()) n += s.length;
    return n;
  }

  async #client(id: number): Promise<void> {
    const acked: number[] = [];
    this.acked.set(id, acked);
    const first = Date.now() % 1_000_000; // a fresh key space per run of the load
    let client: pg.Client | null = null;
    for (let seq = first; !this.#stopped; seq++) {
      try {
        if (!client) {
          client = new pg.Client(this.config);
          client.on('error', () => undefined);
          await client.connect();
        }
        await client.query('INSERT INTO ledger (client, seq) VALUES ($1, $2)', [id, seq]);
        acked.push(seq);
      } catch (err) {
        this.errors.push({ client: id, code: (err as { code?: string }).code, message: (err as Error).message });
        await client?.end().catch(() => undefined);
        client = null;
        await sleep(20);
      }
    }
    await client?.end().catch(() => undefined);
  }

  /** Stops the clients; the acknowledged commits missing from the db (0, always). */
  async stop(): Promise<number> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    const c = new pg.Client(this.config);
    await c.connect();
    const { rows } = await c.query<{ client: number; seq: number }>('SELECT client, seq FROM ledger');
    await c.end();
    const present = new Set(rows.map((r) => `${r.client}/${r.seq}`));
    let missing = 0;
    for (const [id, seqs] of this.acked) for (const seq of seqs) if (!present.has(`${id}/${seq}`)) missing++;
    return missing;
  }
}

describe.each<PoolMode>(['transaction', 'session'])('handoffs through the real gateway, %s mode, under a write load', (poolMode) => {
  let s: HandoffStack;
  let t: TenantDb;
  let client: pg.ClientConfig;

  beforeAll(async () => {
    s = await HandoffStack.start({}, ['gateway']);
    t = await s.runningDb({ poolMode });
    client = { host: '127.0.0.1', port: s.stack.gateway!.port, user: t.tenant.pg_user, password: s.stack.ctx.secrets.open(t.tenant.password_sealed), database: t.db.name };
  });
  afterAll(async () => {
    await s?.destroy();
  });

  it('ten handoffs up and down: every acknowledged commit is there and no client sees an error', async () => {
    const load = new GatewayLedger(client, 8);
    await load.start();
    const profiles: ProfileName[] = ['L2', 'L1', 'L2', 'L4', 'L2', 'L1', 'L4', 'L1', 'L2', 'L1'];
    let term = (await dbRow(s.stack, t.db.id)).writer_term;
    for (const to of profiles) {
      const before = load.acknowledged;
      await s.requestProfile(t.db.id, to);
      const db = await s.settled(t.db.id);
      expect(db, JSON.stringify(db)).toMatchObject({ scale_state: 'STABLE', current_profile: to, writer_term: ++term });
      // Clients go on committing on the new writer.
      const deadline = Date.now() + 10_000;
      while (load.acknowledged < before + 20 && Date.now() < deadline) await sleep(20);
    }
    const missing = await load.stop();
    expect(missing).toBe(0);
    expect(load.errors).toEqual([]);
    expect(load.acknowledged).toBeGreaterThan(200);
  }, 240_000);

  it('a client mid-transaction past the drain deadline (force) gets a retryable 57P01; the others see nothing and nothing acknowledged is lost', async () => {
    s.stack.config.handoffDrainTimeoutMs = 1500;
    await s.stack.ctx.catalog.dbs.update(t.db.id, { handoff_timeout_action: 'force' });
    const load = new GatewayLedger(client, 4);
    await load.start();
    const blocker = new pg.Client(client);
    const blockerError = new Promise<Error & { code?: string }>((resolve) => blocker.on('error', resolve));
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('INSERT INTO ledger (client, seq) VALUES (-1, 1)');
    const from = (await dbRow(s.stack, t.db.id)).current_profile;
    const to: ProfileName = from === 'L1' ? 'L2' : 'L1';
    await s.requestProfile(t.db.id, to);
    const db = await s.settled(t.db.id);
    expect(db).toMatchObject({ scale_state: 'STABLE', current_profile: to });
    // The blocker's next statement (or the connection itself) reports the end of its session.
    const next = await blocker.query('COMMIT').then(
      () => null,
      (err: Error & { code?: string }) => err,
    );
    const seen = next?.code ?? (await Promise.race([blockerError, sleep(2000).then(() => null)]))?.code;
    expect(seen).toBe('57P01');
    await blocker.end().catch(() => undefined);
    const missing = await load.stop();
    expect(missing).toBe(0);
    expect(load.errors).toEqual([]);
    const check = new pg.Client(client);
    await check.connect();
    expect((await check.query('SELECT 1 FROM ledger WHERE client = -1')).rowCount).toBe(0); // never committed
    await check.end();
    await s.stack.ctx.catalog.dbs.update(t.db.id, { handoff_timeout_action: 'rollback' });
  }, 120_000);
});
