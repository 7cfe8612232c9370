import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../core/index.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { ApiClient, eventually } from './client.js';

// `pgwake tenants|dbs|credentials`, run as a real subprocess (bin/pgwake.js, as installed)
// against a real stack: control API, autoscaler with real computes, and the gateway for psql.
const run = promisify(execFile);
const BIN = path.resolve('bin/pgwake.js');

let stack: TestStack;
let home: string;
let key: string;
let accountId: string;

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_GATEWAY_HOST: '127.0.0.1', PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '30' }, ['autoscaler', 'gateway', 'control-api']);
  const res = await new ApiClient(stack.controlApi!.url).post('/v2/accounts', { name: 'cli' });
  key = res.body.api_key;
  accountId = res.body.account.id;
  home = await mkdtemp(path.join(tmpdir(), 'pgwake-cli-home-'));
});
afterAll(async () => {
  await stack?.destroy();
  if (home) await rm(home, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pgwake …` with only the environment given (plus PATH and a temp HOME). */
async function pgwake(args: string[], env: Record<string, string> = { PGWAKE_API_URL: stack.controlApi!.url, PGWAKE_API_KEY: key }): Promise<Run> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH!, HOME: home, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The rows of a table the CLI printed, as records keyed by its (lower-case) headings. */
function tableRows(text: string): Record<string, string>[] {
  const [head, ...lines] = text.trimEnd().split('\n');
  const starts = [...head!.matchAll(/\S+( \S+)*/g)].map((m) => m.index!);
  const names = starts.map((s, i) => head!.slice(s, starts[i + 1]).trim().toLowerCase());
  return lines.map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], starts[i + 1]).trim()])));
}

describe('tenants', () => {
  it('create prints the login once as readable fields, list shows a table, and --json gives the API answer', async () => {
    const created = await pgwake(['tenants', 'create', 'shop']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Tenant shop created.');
    const pgUser = /^pg_user:\s+(\S+)$/m.exec(created.stdout)?.[1];
    const password = /^pg_password:\s+(\S+)$/m.exec(created.stdout)?.[1];
    expect(pgUser).toMatch(/^shop_/);
    expect(password!.length).toBeGreaterThanOrEqual(24);
    expect(created.stdout).toMatch(new RegExp(`^dsn_template:\\s+postgres://${pgUser}:`, 'm'));

    const json = await pgwake(['tenants', 'create', 'books', '--json']);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body).toMatchObject({ tenant: { name: 'books' }, pg_user: expect.stringMatching(/^books_/) });

    const list = await pgwake(['tenants', 'list']);
    expect(list.code).toBe(0);
    expect(tableRows(list.stdout).map((r) => [r.name, r.pg_user])).toEqual([['shop', pgUser], ['books', body.pg_user]]);
    expect(JSON.parse((await pgwake(['tenants', 'list', '--json'])).stdout).tenants.map((t: { name: string }) => t.name)).toEqual(['shop', 'books']);
  });

  it('sends an Idempotency-Key with every create, so its retries cannot make two', async () => {
    const before = (await stack.ctx.catalog.pool.query('SELECT count(*)::int AS n FROM idempotency_keys WHERE account_id = $1', [accountId])).rows[0].n;
    expect((await pgwake(['tenants', 'create', 'keyed'])).code).toBe(0);
    const { rows } = await stack.ctx.catalog.pool.query('SELECT key, status FROM idempotency_keys WHERE account_id = $1 ORDER BY created_at DESC', [accountId]);
    expect(rows.length).toBe(before + 1);
    expect(rows[0]).toMatchObject({ key: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 201 });
  });
});

describe('dbs and credentials', () => {
  it('create, list, describe (by name and by id), connect with psql through the gateway, delete', async () => {
    const created = await pgwake(['dbs', 'create', 'shop', 'app', '--size', 'L2', '--pool-mode', 'transaction', '--pool-size', '7', '--suspend-timeout', '120']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^Db app created in tenant shop: suspended, L2, id db-[a-z0-9]+\.$/m);
    const id = /id (db-[a-z0-9]+)/.exec(created.stdout)![1]!;

    const list = await pgwake(['dbs', 'list', 'shop']);
    expect(list.code).toBe(0);
    expect(tableRows(list.stdout)).toEqual([{ tenant: 'shop', name: 'app', id, state: 'suspended', size: 'L2', pool: 'transaction', 'suspend after': '120s', created: expect.any(String) }]);
    // Without a tenant: every tenant's dbs.
    expect(tableRows((await pgwake(['dbs', 'list'])).stdout).map((r) => r.name)).toEqual(['app']);

    const described = await pgwake(['dbs', 'describe', 'shop', 'app']);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/^state:\s+suspended$/m);
    expect(described.stdout).toMatch(/^scale_state:\s+STABLE$/m);
    expect(described.stdout).toMatch(/^candidate_profile:\s+-$/m);
    expect(described.stdout).toMatch(/^pool_size:\s+7$/m);
    // Then the live figures as a table, after a blank line.
    const liveTable = (text: string) => tableRows(text.split('\n\n')[1]!);
    expect(liveTable(described.stdout)).toEqual([{ connections: '0', 'in flight': '0', waiting: '0', 'open tx': '0', 'last wake': '-', 'last handoff': '-' }]);
    const byId = JSON.parse((await pgwake(['dbs', 'describe', id, '--json'])).stdout);
    expect(byId).toEqual((await new ApiClient(stack.controlApi!.url, key).get(`/v2/dbs/${id}`)).body);

    const creds = await pgwake(['credentials', 'shop']);
    expect(creds.code).toBe(0);
    expect(creds.stdout).toMatch(/^pg_password:\s+\S+$/m);
    const dsn = (await pgwake(['credentials', 'shop', '--db', 'app'])).stdout.trim();
    expect(dsn).toBe(`postgres://${/^pg_user:\s+(\S+)$/m.exec(creds.stdout)![1]}:${encodeURIComponent(/^pg_password:\s+(\S+)$/m.exec(creds.stdout)![1]!)}@127.0.0.1:${stack.gateway!.port}/app?sslmode=require`);
    const { stdout } = await run('psql', [dsn, '-XAtc', 'select current_database()'], { timeout: 30_000 });
    expect(stdout.trim()).toBe('app');
    const woken = JSON.parse((await pgwake(['dbs', 'describe', 'shop', 'app', '--json'])).stdout);
    expect(woken.state).toBe('running');
    expect(woken.live.last_wake_seconds).toBeGreaterThan(0);
    expect(liveTable((await pgwake(['dbs', 'describe', 'shop', 'app'])).stdout)[0]!['last wake']).toBe(`${woken.live.last_wake_seconds}s at ${woken.live.last_wake_at}`);

    // Deleting asks for confirmation: without a terminal to ask on, --yes is required.
    const refused = await pgwake(['dbs', 'delete', 'shop', 'app']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--yes');
    expect(JSON.parse((await pgwake(['dbs', 'describe', id, '--json'])).stdout).state).toBe('running');
    const deleted = await pgwake(['dbs', 'delete', 'shop', 'app', '--yes']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain('Db app is deleting');
    await eventually(async () => (await pgwake(['dbs', 'describe', id])).code === 5, 30_000, 'describe to exit 5 (not found)');
  });

  it('create --start runs the db at once', async () => {
    const res = await pgwake(['dbs', 'create', 'books', 'hot', '--start', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ name: 'hot', state: 'running', current_scale: 1 });
  });
});

describe('errors', () => {
  it("the API's refusals are printed in words, with the flag that was wrong, and exit 1", async () => {
    const bad = await pgwake(['dbs', 'create', 'shop', 'tiny', '--suspend-timeout', '5', '--size', 'L3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--suspend-timeout: must be >= 30');
    expect(bad.stderr).toContain('--size: must be one of L1, L2, L4, L8');
    expect(bad.stdout).toBe('');
    const dup = await pgwake(['tenants', 'create', 'shop']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('pgwake: a tenant named "shop" exists already');
    const json = await pgwake(['tenants', 'create', 'shop', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr).error).toMatchObject({ code: 'conflict', message: expect.any(String), details: { field: 'name' } });
  });

  it('not found exits 5, a wrong key 4, an unreachable API 3', async () => {
    const missing = await pgwake(['dbs', 'describe', 'shop', 'nope']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain('not found');
    expect((await pgwake(['credentials', 'nobody'])).code).toBe(5);

    const wrong = await pgwake(['tenants', 'list'], { PGWAKE_API_URL: stack.controlApi!.url, PGWAKE_API_KEY: `pgw_${'x'.repeat(32)}` });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('invalid API key');
    expect(wrong.stderr).toContain('PGWAKE_API_KEY');

    const closed = await freePort();
    const down = await pgwake(['tenants', 'list'], { PGWAKE_API_URL: `http://127.0.0.1:${closed}`, PGWAKE_API_KEY: key });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain(`cannot reach the control API at http://127.0.0.1:${closed}`);
    expect(down.stderr).toContain('ECONNREFUSED');
  });

  it('bad arguments and missing settings exit 2 with the usage', async () => {
    const usage = await pgwake(['dbs', 'create', 'shop']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing argument: expected <tenant> <db>');
    expect(usage.stderr).toContain('Usage: pgwake dbs create');
    expect((await pgwake(['dbs', 'create', 'shop', 'x', '--pool-size', 'many'])).stderr).toContain('--pool-size must be a whole number');
    expect((await pgwake(['dbs', 'list', '--colour'])).code).toBe(2);
    expect((await pgwake(['dbs', 'frobnicate'])).code).toBe(2);
    expect((await pgwake(['dbs', 'describe', 'not-an-id'])).stderr).toContain('not a db id');
    const none = await pgwake(['tenants', 'list'], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('PGWAKE_API_URL');
    expect(none.stderr).toContain(path.join(home, '.config/pgwake/config.json'));
    const help = await pgwake(['dbs', '--help'], {});
    expect(help.code).toBe(0);
    for (const sub of ['create', 'list', 'describe', 'delete']) expect(help.stdout).toContain(`pgwake dbs ${sub}`);
  });
});

describe('settings', () => {
  it('reads the API URL and key from ~/.config/pgwake/config.json, warns when others can read it, and the environment wins', async () => {
    const dir = path.join(home, '.config', 'pgwake');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'config.json');
    await writeFile(file, JSON.stringify({ api_url: stack.controlApi!.url, api_key: key }));
    await chmod(file, 0o644);
    const open = await pgwake(['tenants', 'list', '--json'], {});
    expect(open.code, open.stderr).toBe(0);
    expect(JSON.parse(open.stdout).tenants.length).toBeGreaterThan(0);
    expect(open.stderr).toContain(`chmod 600 ${file}`);
    await chmod(file, 0o600);
    const quiet = await pgwake(['tenants', 'list'], {});
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    // The environment's key wins over the file's: a wrong one is refused.
    expect((await pgwake(['tenants', 'list'], { PGWAKE_API_KEY: `pgw_${'y'.repeat(32)}` })).code).toBe(4);
    // XDG_CONFIG_HOME moves the file.
    const elsewhere = await pgwake(['tenants', 'list'], { XDG_CONFIG_HOME: path.join(home, 'nothing-here') });
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain(path.join(home, 'nothing-here', 'pgwake', 'config.json'));
    await writeFile(file, '{not json');
    const broken = await pgwake(['tenants', 'list'], {});
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('is not valid JSON');
    await rm(file);
  });
});
