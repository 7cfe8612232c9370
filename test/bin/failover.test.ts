import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { callApi as call, sample, startRole, startSharedServices, type RoleProcess, type SharedServices } from './roles.js';

// Two (then three) `pgwake autoscaler` processes over one Redis and one catalog, as docker-compose
// runs them: one holds the lease and acts, the other stands by; a leader that dies or pauses is
// replaced, and what it does afterwards with its stale fencing epoch moves nothing.
let shared: SharedServices;
let computesDir: string;
let env: Record<string, string>;
let gateway: RoleProcess;
let api: RoleProcess;
const autoscalers: RoleProcess[] = [];
let catalog: pg.Client;

beforeAll(async () => {
  shared = await startSharedServices();
  // Both autoscalers see one computes directory (compose: a shared volume): the new leader finds what the old one ran.
  computesDir = await mkdtemp(path.join(tmpdir(), 'pgwake-computes-'));
  await chmod(computesDir, 0o755);
  env = {
    ...shared.env,
    PGWAKE_DATA_DIR: computesDir,
    PGWAKE_AUTOSCALER_LEASE_TTL_MS: '2000',
    PGWAKE_HANDOFF_FAILURE_COOLDOWN_SECONDS: '1',
    PGWAKE_HANDOFF_PREPARE_TIMEOUT_MS: '20000',
    PGWAKE_HANDOFF_CATCHUP_TIMEOUT_MS: '20000',
  };
  autoscalers.push(await startRole('autoscaler', env));
  autoscalers.push(await startRole('autoscaler', env, 120_000, false));
  [gateway, api] = await Promise.all([startRole('gateway', shared.env), startRole('control-api', shared.env)]);
  catalog = new pg.Client({ connectionString: shared.catalog.url });
  await catalog.connect();
}, 180_000);

afterAll(async () => {
  await catalog?.end().catch(() => undefined);
  await Promise.all([gateway, api].filter(Boolean).map((p) => p.stop()));
  for (const a of autoscalers) {
    try {
      process.kill(a.pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await Promise.all(autoscalers.map((a) => a.stop()));
  await shared?.stop();
  await rm(computesDir, { recursive: true, force: true });
}, 120_000);

interface Row {
  state: string;
  scale_state: string;
  lease_control_epoch: string;
  current_profile: string;
  target_profile: string;
  scale_failure_reason: string | null;
  writer_term: string;
}

async function row(dbId: string): Promise<Row> {
  return (await catalog.query<Row>('SELECT state, scale_state, lease_control_epoch, current_profile, target_profile, scale_failure_reason, writer_term FROM dbs WHERE id = $1', [dbId])).rows[0]!;
}

/** Polls the catalog row every 20 ms until `done`; every scale_state seen (with its failure reason) on the way. */
async function watchRow(dbId: string, done: (r: Row) => boolean, timeoutMs: number): Promise<{ last: Row; seen: string[] }> {
  const seen: string[] = [];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await row(dbId);
    const label = r.scale_state === 'FAILED' ? `FAILED ${r.scale_failure_reason}` : r.scale_state;
    if (seen[seen.length - 1] !== label) seen.push(label);
    if (done(r)) return { last: r, seen };
    if (Date.now() > until) throw new Error(`db row did not get there in ${timeoutMs} ms; seen ${seen.join(' → ')}; last ${JSON.stringify(r)}`);
    await sleep(20);
  }
}

async function queryCount(login: { user: string; password: string }): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port: gateway.gatewayPort, user: login.user, password: login.password, database: 'app', ssl: false });
  await c.connect();
  try {
    return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM kept')).rows[0]!.n);
  } finally {
    await c.end();
  }
}

function leaderMetric(a: RoleProcess): Promise<string> {
  const url = /metrics\s+(http:\/\/\S+\/metrics)/.exec(a.output())![1]!;
  return fetch(url).then((r) => r.text());
}

it('one autoscaler acts; killed mid-handoff, the standby takes over with a higher epoch and settles the handoff; a paused leader resumed with its stale epoch moves nothing', async () => {
  const [first, second] = autoscalers as [RoleProcess, RoleProcess];
  const signup = await call('POST', `${api.apiUrl}/v2/accounts`, undefined, { name: 'failover' });
  const key: string = signup.body.api_key;
  const tenant = await call('POST', `${api.apiUrl}/v2/tenants`, key, { name: 'failover' });
  const created = await call('POST', `${api.apiUrl}/v2/tenants/failover/dbs`, key, { name: 'app', size: 'L1' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const dbId: string = created.body.id;
  const login = { user: tenant.body.pg_user as string, password: tenant.body.pg_password as string };
  await watchRow(dbId, (r) => r.state === 'suspended', 60_000);
  // Data enough that a handoff's base backup takes a moment to catch it in.
  const c = new pg.Client({ host: '127.0.0.1', port: gateway.gatewayPort, user: login.user, password: login.password, database: 'app', ssl: false });
  await c.connect();
  await c.query('CREATE TABLE kept AS SELECT g AS v, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 200000) g');
  await c.end();

  // The standby has not started acting (it says it is up only once it holds the lease); the leader wrote its epoch.
  expect(second.output()).not.toContain('Ctrl-C stops everything');
  expect(sample(await leaderMetric(first), 'pgwake_autoscaler_leader')).toBe(1);
  const firstEpoch = Number((await row(dbId)).lease_control_epoch);
  expect(firstEpoch).toBeGreaterThan(0);

  // A handoff to L2 by PATCH; the leader dies (SIGKILL) while it prepares or catches up.
  const patched = await call('PATCH', `${api.apiUrl}/v2/tenants/failover/dbs/app`, key, { size: 'L2' });
  expect(patched.status, JSON.stringify(patched.body)).toBe(200);
  const caught = await watchRow(dbId, (r) => r.scale_state === 'PREPARING' || r.scale_state === 'CATCHING_UP', 30_000);
  process.kill(first.pid, 'SIGKILL');
  const killedIn = caught.last.scale_state;

  // The standby takes the lease and settles the handoff: rolled back (FAILED controller_failover, then STABLE) or finished at L2.
  await second.up;
  const settled = await watchRow(dbId, (r) => r.scale_state === 'STABLE' && Number(r.lease_control_epoch) > firstEpoch, 60_000);
  const secondEpoch = Number(settled.last.lease_control_epoch);
  expect(secondEpoch).toBeGreaterThan(firstEpoch);
  const rolledBack = settled.seen.includes('FAILED controller_failover') && settled.last.current_profile === 'L1';
  const finished = settled.last.current_profile === 'L2';
  expect(rolledBack || finished, `killed in ${killedIn}; seen ${settled.seen.join(' → ')}; ${JSON.stringify(settled.last)}`).toBe(true);
  expect(await queryCount(login)).toBe(200000);
  expect(sample(await leaderMetric(second), 'pgwake_autoscaler_lease_control_epoch')).toBe(secondEpoch);

  // A third autoscaler stands by; the leader pauses (SIGSTOP) in the middle of another handoff.
  const third = await startRole('autoscaler', env, 120_000, false);
  autoscalers.push(third);
  await sleep(2_000); // up to its lease attempts
  expect(third.output()).not.toContain('Ctrl-C stops everything');
  const back = await call('PATCH', `${api.apiUrl}/v2/tenants/failover/dbs/app`, key, { size: settled.last.current_profile === 'L2' ? 'L1' : 'L2' });
  expect(back.status, JSON.stringify(back.body)).toBe(200);
  await watchRow(dbId, (r) => r.scale_state === 'PREPARING' || r.scale_state === 'CATCHING_UP', 30_000);
  process.kill(second.pid, 'SIGSTOP');
  await third.up;
  const taken = await watchRow(dbId, (r) => r.scale_state === 'STABLE' && Number(r.lease_control_epoch) > secondEpoch, 60_000);
  const thirdEpoch = Number(taken.last.lease_control_epoch);
  console.log(`failover: SIGKILL in ${killedIn} → ${settled.seen.join(' → ')} (epoch ${firstEpoch} → ${secondEpoch}); SIGSTOP → ${taken.seen.join(' → ')} (epoch ${secondEpoch} → ${thirdEpoch})`);

  // Resumed, the old leader finds its lease gone: it steps down, and nothing it does moves the db.
  process.kill(second.pid, 'SIGCONT');
  await sleep(4_000);
  const after = await row(dbId);
  expect(Number(after.lease_control_epoch)).toBe(thirdEpoch);
  expect({ scale_state: after.scale_state, current_profile: after.current_profile, target_profile: after.target_profile, writer_term: after.writer_term }).toEqual({
    scale_state: taken.last.scale_state,
    current_profile: taken.last.current_profile,
    target_profile: taken.last.target_profile,
    writer_term: taken.last.writer_term,
  });
  expect(second.output()).toContain('lost the autoscaler lease');
  expect(sample(await leaderMetric(second), 'pgwake_autoscaler_leader')).toBe(0);
  expect(sample(await leaderMetric(third), 'pgwake_autoscaler_leader')).toBe(1);
  // Control requests reach the acting autoscaler: suspend through the API, wake through the gateway.
  const suspended = await call('POST', `${api.apiUrl}/v2/dbs/${dbId}/suspend`, key);
  expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
  expect(await queryCount(login)).toBe(200000);
  expect(Number((await row(dbId)).lease_control_epoch)).toBe(thirdEpoch);
}, 180_000);
