import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScramVerifier } from '../../core/index.js';
import { startGateway, type GatewayRole } from '../../gateway/index.js';
import type { TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, dsn, errorsIn, metricsText, pgClient, run, sample, startGatewayStack, startsOf, startupPacket, type TenantDb } from './support.js';

/** Authentication happens at the gateway, before any wake, and says the same thing to every stranger. */
let stack: TestStack;
let t: TenantDb;
let other: TenantDb;

beforeAll(async () => {
  stack = await startGatewayStack();
  [t, other] = await Promise.all([createTenantDb(stack), createTenantDb(stack, { dbName: 'otherdb' })]);
});

afterAll(async () => {
  await stack?.destroy();
});

const connectError = async (config: pg.ClientConfig): Promise<Record<string, unknown>> => {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return err as Record<string, unknown>;
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('connected, but should not have');
};

describe('bad credentials', () => {
  it('a wrong password and an unknown user get the identical 28P01, and no compute starts', async () => {
    const before = await metricsText(stack);
    const base = { host: '127.0.0.1', port: stack.gateway!.port, database: t.db.name };
    const wrong = await connectError({ ...base, user: t.tenant.pg_user, password: 'not-the-password' });
    const unknown = await connectError({ ...base, user: 'nobody_here', password: 'whatever' });
    const shape = (e: Record<string, unknown>, user: string) => ({ code: e.code, severity: e.severity, message: String(e.message).replace(user, '<user>') });
    expect(shape(wrong, t.tenant.pg_user)).toEqual({ code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "<user>"' });
    expect(shape(unknown, 'nobody_here')).toEqual(shape(wrong, t.tenant.pg_user));

    // psql says the same, over TLS too.
    const psqlError = async (user: string) =>
      run('/usr/bin/psql', [dsn(stack, t, { sslmode: 'require', user, password: 'nope' }), '-c', 'select 1']).then(
        () => 'connected',
        (e: { stderr: string }) => e.stderr.replace(user, '<user>').replace(/^.*?FATAL/s, 'FATAL').trim(),
      );
    const [strangerSays, wrongSays] = [await psqlError('nobody_else'), await psqlError(t.tenant.pg_user)];
    expect(strangerSays).toBe(wrongSays);
    expect(strangerSays).toBe('FATAL:  password authentication failed for user "<user>"');

    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
    expect(await startsOf(stack, t)).toBe(0);
    const after = await metricsText(stack);
    const delta = (reason: string) => sample(after, 'pgwake_gateway_auth_failures_total', { reason }) - sample(before, 'pgwake_gateway_auth_failures_total', { reason });
    expect(delta('wrong_password')).toBe(2);
    expect(delta('unknown_user')).toBe(2);
  });

  it('an unknown user gets a mock challenge that looks like a real one, stable per name', async () => {
    const serverFirst = (user: string) => saslServerFirst(stack.gateway!.port, user);
    const a = await serverFirst('ghost_user');
    const b = await serverFirst('ghost_user');
    const c = await serverFirst('another_ghost');
    const real = await serverFirst(t.tenant.pg_user);
    expect(a.salt).toBe(b.salt);
    expect(a.salt).not.toBe(c.salt);
    expect(Buffer.from(a.salt, 'base64')).toHaveLength(16);
    expect(a.iterations).toBe(real.iterations);
    expect(real.salt).toBe(parseScramVerifier(t.tenant.scram_verifier).salt.toString('base64'));
    expect((await dbRow(stack, t.db.id)).state).toBe('suspended');
  });
});

describe('routing', () => {
  it('an unknown database is 3D000, told only after a correct password', async () => {
    const base = { host: '127.0.0.1', port: stack.gateway!.port, user: t.tenant.pg_user };
    const missing = await connectError({ ...base, password: t.password, database: 'no_such_db' });
    expect(missing).toMatchObject({ code: '3D000', message: 'database "no_such_db" does not exist' });
    const probing = await connectError({ ...base, password: 'wrong', database: 'no_such_db' });
    expect(probing.code).toBe('28P01');
    // Another tenant's db is not this tenant's, by name or by endpoint.
    expect(await connectError({ ...base, password: t.password, database: 'otherdb' })).toMatchObject({ code: '3D000' });
    expect(await connectError({ ...base, password: t.password, options: `endpoint=${other.db.id}` } as pg.ClientConfig)).toMatchObject({ code: '3D000' });
  });

  it('routes by options=endpoint=<db-id> and by SNI <db-id>.<gateway host>', async () => {
    const byOptions = pgClient(stack, t, { database: 'whatever', options: `endpoint=${t.db.id} -c work_mem=8MB` } as never);
    await byOptions.connect();
    const r1 = await byOptions.query<{ db: string; wm: string }>("select current_database() as db, current_setting('work_mem') as wm");
    expect(r1.rows[0]).toEqual({ db: 'app', wm: '8MB' });
    await byOptions.end();

    const bySni = pgClient(stack, t, { database: 'whatever', ssl: { rejectUnauthorized: false, servername: `${t.db.id}.${stack.config.gatewayHost}` } } as never);
    await bySni.connect();
    expect((await bySni.query<{ db: string }>('select current_database() as db')).rows[0]!.db).toBe('app');
    await bySni.end();
  });
});

describe('TLS', () => {
  let strict: GatewayRole;
  beforeAll(async () => {
    strict = await startGateway({ ...stack.ctx, config: { ...stack.config, requireTls: true, gatewayPort: 0 } });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('a gateway that requires TLS refuses plaintext clients with a clear error and serves TLS ones', async () => {
    const url = (mode: string) => `postgresql://${t.tenant.pg_user}:${encodeURIComponent(t.password)}@127.0.0.1:${strict.port}/app?sslmode=${mode}`;
    const refused = await run('/usr/bin/psql', [url('disable'), '-c', 'select 1']).then(
      () => 'connected',
      (e: { stderr: string }) => e.stderr,
    );
    expect(refused).toMatch(/FATAL:\s+connection is insecure \(try using sslmode=require\)/);
    const { stdout } = await run('/usr/bin/psql', [url('require'), '-Atc', 'select 7']);
    expect(stdout.trim()).toBe('7');
  });

  it('keeps the self-signed certificate it made on first start', async () => {
    const { readFile } = await import('node:fs/promises');
    const before = await readFile(`${stack.dataDir}/tls/server.crt`, 'utf8');
    const again = await startGateway({ ...stack.ctx, config: { ...stack.config, gatewayPort: 0 } });
    await again.stop();
    expect(await readFile(`${stack.dataDir}/tls/server.crt`, 'utf8')).toBe(before);
  });
});

/** Starts a SCRAM exchange by hand and returns the server-first message's salt and iteration count. */
async function saslServerFirst(port: number, user: string): Promise<{ salt: string; iterations: number }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  let buf = Buffer.alloc(0);
  const waitFor = (pred: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pred()) {
          socket.off('data', onData);
          resolve();
        }
      };
      const onData = (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        check();
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error(`closed: ${JSON.stringify(errorsIn(buf))}`)));
      check();
    });
  await new Promise((r) => socket.once('connect', r));
  socket.write(startupPacket({ user, database: 'app' }));
  await waitFor(() => buf.length > 9 && buf.length >= 1 + buf.readInt32BE(1));
  expect(buf[0]).toBe(0x52);
  expect(buf.readInt32BE(5)).toBe(10); // AuthenticationSASL
  buf = Buffer.alloc(0);
  const clientFirst = Buffer.from('n,,n=,r=abcdefghijklmnop');
  const mech = Buffer.from('SCRAM-SHA-256\0');
  const len = Buffer.alloc(4);
  len.writeInt32BE(clientFirst.length);
  const body = Buffer.concat([mech, len, clientFirst]);
  const head = Buffer.alloc(5);
  head[0] = 0x70;
  head.writeInt32BE(body.length + 4, 1);
  socket.write(Buffer.concat([head, body]));
  await waitFor(() => buf.length > 9 && buf.length >= 1 + buf.readInt32BE(1));
  expect(buf.readInt32BE(5)).toBe(11); // AuthenticationSASLContinue
  const serverFirst = buf.toString('utf8', 9, 1 + buf.readInt32BE(1));
  socket.destroy();
  const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
  expect(attrs.r!.startsWith('abcdefghijklmnop')).toBe(true);
  return { salt: attrs.s!, iterations: Number(attrs.i) };
}
