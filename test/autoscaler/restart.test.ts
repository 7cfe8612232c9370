import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../bin/stack.js';
import { createLogger, freePort, PostgresServer, PROFILES } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { connectAsTenant, createTenantDb, dbRow, postmastersUnder, waitFor, type TenantDb } from './fixtures.js';

describe('autoscaler: stop and restart on the same data dir', () => {
  let first: TestStack | undefined;
  const later: Stack[] = [];
  let t: TenantDb;

  afterAll(async () => {
    for (const s of later) await s.stop().catch(() => undefined);
    await first?.stop().catch(() => undefined);
    if (first) await rm(first.dataDir, { recursive: true, force: true });
  });

  const restart = async (roles: 'autoscaler'[] = ['autoscaler']) => {
    const s = await startStack(first!.config, roles, createLogger(first!.config.logLevel, 'pgwake-test'));
    later.push(s);
    return s;
  };

  it('stop() suspends running computes cleanly; the next stack finds the db suspended and wakes it with its data', async () => {
    first = await startTestStack({}, ['autoscaler']);
    t = await createTenantDb(first);
    await first.ctx.coordinator.requestControl({ action: 'provision', dbId: t.db.id }, 30_000);
    await first.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 30_000);
    const c = await connectAsTenant(first, t);
    await c.query('CREATE TABLE kept (v text)');
    await c.query("INSERT INTO kept VALUES ('survives a restart')");
    await c.end();

    await first.stop();
    const computeDir = path.join(first.dataDir, 'computes', t.db.id);
    expect(await postmastersUnder(computeDir)).toEqual([]);

    const second = await restart();
    expect(await dbRow(second, t.db.id)).toMatchObject({ state: 'suspended', current_scale: 0, compute_port: null });
    await second.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 30_000);
    const c2 = await connectAsTenant(second, t);
    try {
      expect((await c2.query('SELECT v FROM kept')).rows).toEqual([{ v: 'survives a restart' }]);
    } finally {
      await c2.end();
    }
    await second.stop();
    later.length = 0;
  });

  it('a db left running by a pgwake that died, its writer still up: the next start stops that writer and marks the db suspended', async () => {
    // A stack with no autoscaler plays the dead pgwake: it leaves the row `running` and a postmaster nobody tracks.
    const dead = await restart([]);
    const dataDir = path.join(first!.dataDir, 'computes', t.db.id, 'data');
    const stray = await PostgresServer.start({ binDir: dead.ctx.binDir, dataDir, host: '127.0.0.1', port: await freePort(), owner: dead.ctx.owner, startTimeoutMs: 20_000, settings: PROFILES.L1.postgresSettings });
    await dead.ctx.catalog.dbs.transition(t.db.id, ['suspended'], 'starting');
    await dead.ctx.catalog.dbs.transition(t.db.id, ['starting'], 'running', { current_scale: 1, target_scale: 1, compute_host: '127.0.0.1', compute_port: stray.options.port, worker_id: 'local/elsewhere/1' });
    await dead.stop();
    later.length = 0;
    expect(stray.running).toBe(true);

    const third = await restart();
    expect(await dbRow(third, t.db.id)).toMatchObject({ state: 'suspended', current_scale: 0, target_scale: 0, compute_host: null, compute_port: null, worker_id: null });
    await stray.exited;
    expect(await postmastersUnder(dataDir)).toEqual([]);

    await third.ctx.coordinator.requestControl({ action: 'wake', dbId: t.db.id }, 30_000);
    const c = await connectAsTenant(third, t);
    try {
      expect((await c.query('SELECT v FROM kept')).rows).toEqual([{ v: 'survives a restart' }]);
    } finally {
      await c.end();
    }
  });

  it('dbs left creating or deleting are provisioned or deleted at start', async () => {
    const s = later[later.length - 1]!;
    const creating = await createTenantDb(s, { dbName: 'late' });
    const doomed = await createTenantDb(s, { dbName: 'doomed' });
    await s.ctx.coordinator.requestControl({ action: 'provision', dbId: doomed.db.id }, 30_000);
    await s.stop();
    later.length = 0;
    // Between runs: the control API marked one db for deletion, and the other was never provisioned.
    const between = await restart([]);
    await between.ctx.catalog.dbs.transition(doomed.db.id, ['suspended'], 'deleting');
    expect((await dbRow(between, creating.db.id)).state).toBe('creating');
    await between.stop();
    later.length = 0;

    const next = await restart();
    await waitFor('provisioned', async () => (await dbRow(next, creating.db.id)).state === 'suspended');
    await waitFor('deleted', async () => (await dbRow(next, doomed.db.id)).state === 'deleted');
    expect(existsSync(path.join(first!.dataDir, 'computes', doomed.db.id))).toBe(false);
    expect(existsSync(path.join(first!.dataDir, 'computes', creating.db.id, 'data', 'PG_VERSION'))).toBe(true);
  });
});
