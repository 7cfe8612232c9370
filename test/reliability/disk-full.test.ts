import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTenantDb, pgClient, startGatewayStack, waitFor, type TenantDb } from '../gateway/support.js';
import type { TestStack } from '../support/stack.js';

/**
 * A compute whose data disk fills up: its dir is a small tmpfs of its own
 * (mounted as root, which the test machine is). A ballast file takes the space;
 * a writer through the gateway runs into the full disk, then the ballast goes.
 */
const SIZE_MB = 160;

describe('chaos: the data disk of a compute fills up', () => {
  let stack: TestStack;
  let t: TenantDb;
  let mounted: string | undefined;
  afterAll(async () => {
    await stack?.destroy().catch(() => undefined);
    if (mounted) execFileSync('umount', ['-l', mounted]);
  });

  it('writes get a clear error; nothing acknowledged is lost; after space is freed writes work again', async () => {
    stack = await startGatewayStack();
    t = await createTenantDb(stack, { provision: false });
    const dir = path.join(stack.dataDir, 'computes', t.db.id);
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m,mode=0755`, 'tmpfs', dir]);
    mounted = dir;
    execFileSync('chown', ['nobody', dir]);
    await stack.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 60_000);

    const c = pgClient(stack, t);
    c.on('error', () => undefined);
    await c.connect();
    await c.query('create table ledger (id int primary key, pad text)');
    const acked: number[] = [];
    const ballast = path.join(dir, 'ballast');
    const free = () => { const s = statfsSync(dir); return s.bavail * s.bsize; };
    // Leave ~24 MB: enough to start writing, not enough for what follows.
    execFileSync('fallocate', ['-l', String(Math.max(0, free() - 24 * 1024 * 1024)), ballast]);
    let failure: (Error & { code?: string }) | null = null;
    for (let i = 0; i < 10_000 && !failure; i++) {
      try {
        await c.query("insert into ledger select $1::int * 1000 + g, repeat(md5(g::text), 32) from generate_series(1, 1000) g", [i]);
        acked.push(i);
      } catch (err) {
        failure = err as Error & { code?: string };
      }
    }
    console.log(`chaos/disk: after ${acked.length} acknowledged inserts (1000 rows each), the client saw: ${failure ? `${failure.code ?? '-'} ${failure.message}` : 'nothing'}`);
    expect(failure?.code).toBe('53100');
    expect(failure?.message).toMatch(/No space left on device/);
    // The session goes on: reads work while the disk is full.
    expect((await c.query<{ n: number }>('select count(*)::int as n from ledger')).rows[0]!.n).toBe(acked.length * 1000);
    await c.end().catch(() => undefined);

    rmSync(ballast);
    const again = await waitFor('a working connection after space was freed', async () => {
      const x = pgClient(stack, t);
      x.on('error', () => undefined);
      return x.connect().then(() => x.query('select 1').then(() => x), () => null);
    }, 60_000, 500);
    const { rows } = await again.query<{ batch: number }>('select distinct (id - 1) / 1000 as batch from ledger');
    const present = new Set(rows.map((r) => Number(r.batch)));
    expect(acked.filter((b) => !present.has(b))).toEqual([]);
    await again.query("insert into ledger values (-1, 'after')");
    expect((await again.query('select count(*)::int as n from ledger where id = -1')).rows[0].n).toBe(1);
    await again.end();
  }, 120_000);
});
