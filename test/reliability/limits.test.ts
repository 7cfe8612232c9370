import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createTenantDb, metricsText, pgClient, sample, setPool, startGatewayStack, waitFor, type TenantDb } from '../gateway/support.js';
import type { TestStack } from '../support/stack.js';

/**
 * The gateway's own limits, with real clients: connections per source address
 * (53300 at accept) and the size of one client message (54000, then closed).
 */
const PER_ADDRESS = 3;
const MAX_MESSAGE = 1024 * 1024;

let stack: TestStack;
let t: TenantDb;

beforeAll(async () => {
  stack = await startGatewayStack({ PGWAKE_MAX_CLIENTS_PER_ADDRESS: String(PER_ADDRESS), PGWAKE_MAX_CLIENT_MESSAGE_BYTES: String(MAX_MESSAGE) });
  t = await createTenantDb(stack);
}, 120_000);

afterAll(async () => {
  await stack?.destroy();
});

async function connected(): Promise<pg.Client> {
  const c = pgClient(stack, t);
  await c.connect();
  return c;
}

describe('connections per source address', () => {
  it(`the ${PER_ADDRESS + 1}th open connection from one address gets 53300 naming the limit; a slot freed is usable again`, async () => {
    const open = [];
    for (let i = 0; i < PER_ADDRESS; i++) open.push(await connected());
    for (const c of open) expect((await c.query('select 1 as one')).rows[0].one).toBe(1);

    const refusedBefore = sample(await metricsText(stack), 'pgwake_gateway_connections_total', { outcome: 'too_many_connections' });
    const refused = pgClient(stack, t);
    const err = (await refused.connect().then(() => null, (e: unknown) => e)) as (Error & { code?: string; detail?: string }) | null;
    expect(err).not.toBeNull();
    expect(err!.code).toBe('53300');
    expect(err!.message).toBe('too many connections from address 127.0.0.1');
    expect(err!.detail).toContain(`${PER_ADDRESS} open connections per client address`);
    expect(sample(await metricsText(stack), 'pgwake_gateway_connections_total', { outcome: 'too_many_connections' })).toBe(refusedBefore + 1);
    // The open sessions are untouched.
    for (const c of open) expect((await c.query('select 2 as two')).rows[0].two).toBe(2);

    await open.pop()!.end();
    // The slot frees when the gateway sees the close: the next client gets in.
    const again = await waitFor('a freed slot', async () => {
      const c = pgClient(stack, t);
      return c.connect().then(() => c, () => null);
    }, 5_000);
    expect((await again.query('select 3 as three')).rows[0].three).toBe(3);
    await Promise.all([...open, again].map((c) => c.end()));
  }, 60_000);
});

describe('client message size', () => {
  for (const mode of ['session', 'transaction'] as const) {
    it(`${mode} mode: a query just under the limit runs; one over it gets 54000 and the connection closes; nothing of it ran`, async () => {
      await setPool(stack, t, mode, null);
      const c = await connected();
      await c.query('create table if not exists big_inserts (mode text, n int, body text)');
      const under = 'x'.repeat(MAX_MESSAGE - 4096);
      await c.query(`insert into big_inserts values ('${mode}', 1, '${under}')`);
      const over = 'y'.repeat(MAX_MESSAGE + 1);
      let closed = false;
      c.on('error', () => undefined);
      c.on('end', () => (closed = true));
      const err = (await c.query(`insert into big_inserts values ('${mode}', 2, '${over}')`).then(() => null, (e: unknown) => e)) as (Error & { code?: string; detail?: string }) | null;
      expect(err).not.toBeNull();
      expect(err!.code).toBe('54000');
      expect(err!.message).toBe('message too large');
      expect(err!.detail).toContain(`at most ${MAX_MESSAGE}`);
      await waitFor('the connection to close', async () => closed, 5_000);

      const check = await connected();
      const rows = (await check.query<{ n: number; len: number }>('select n, length(body) as len from big_inserts where mode = $1 order by n', [mode])).rows;
      expect(rows).toEqual([{ n: 1, len: under.length }]);
      // Bind parameters count too (extended protocol, the message is a Bind).
      check.on('error', () => undefined);
      const bindErr = (await check.query('select length($1::text) as len', [over]).then(() => null, (e: unknown) => e)) as { code?: string } | null;
      expect(bindErr?.code).toBe('54000');
      await check.end().catch(() => undefined);
      await c.end().catch(() => undefined);
    }, 60_000);
  }
});
