import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_UNIX_SOCKET_PATH_BYTES } from '../../core/index.js';
import { ComputeSockets } from '../../gateway/compute-sockets.js';
import { startGateway, type GatewayRole } from '../../gateway/index.js';
import { sendCancelRequest } from '../support/cancel-request.js';
import { CapturedLogs } from '../support/captured-logs.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { createTenantDb, dbRow, pgClient, setPool, waitFor, type TenantDb } from './support.js';

/** The gateway reaches computes on this machine over their Unix sockets (PGWAKE_COMPUTE_UNIX_SOCKETS), TCP when it cannot. */


const FALLBACK_LOG = "cannot open the compute's Unix socket; using TCP";

let stack: TestStack;
/** A second gateway on the same stack with the setting off. */
let tcpGateway: GatewayRole;
const logs = new CapturedLogs();

beforeAll(async () => {
  stack = await startTestStack({ PGWAKE_LOG_LEVEL: 'info' }, ['autoscaler', 'gateway'], { logDestination: logs });
  tcpGateway = await startGateway({ ...stack.ctx, config: { ...stack.config, gatewayPort: 0, computeUnixSockets: false } });
});
afterAll(async () => {
  await tcpGateway?.stop();
  await stack?.destroy();
});

/** How the compute sees the connection that serves this client: no address and port -1 for a Unix-socket client. */
async function peerSeenByCompute(client: pg.Client): Promise<{ addr: string | null; port: number }> {
  const { rows } = await client.query<{ addr: string | null; port: number }>('SELECT host(inet_client_addr()) AS addr, (SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS port');
  return rows[0]!;
}

async function connected(t: TenantDb, port = stack.gateway!.port): Promise<pg.Client> {
  const client = pgClient(stack, t, { port });
  await client.connect();
  return client;
}

/** A CancelRequest with the gateway's key for `client`, sent to the gateway by hand. */
async function cancelThroughGateway(client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  await sendCancelRequest(stack.gateway!.port, processID, secretKey);
}

/** Cancels a long sleep of `client` once the compute runs it; resolves with how the sleep ended. */
async function cancelsASleep(t: TenantDb, client: pg.Client): Promise<string> {
  const sleeping = client.query('SELECT pg_sleep(30)').then(() => 'finished', (e: { code: string }) => e.code);
  const watcher = await connected(t);
  try {
    await waitFor('the sleep to run', async () => (await watcher.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rowCount === 1);
  } finally {
    await watcher.end();
  }
  await cancelThroughGateway(client);
  return sleeping;
}

describe('gateway to compute over the Unix socket', () => {
  it('session mode: the compute sees the gateway on its Unix socket', async () => {
    const t = await createTenantDb(stack);
    const client = await connected(t);
    try {
      expect(await peerSeenByCompute(client)).toEqual({ addr: null, port: -1 });
      const db = await dbRow(stack, t.db.id);
      expect(db.compute_socket_path).toMatch(new RegExp(`/\\.s\\.PGSQL\\.${db.compute_port}$`));
    } finally {
      await client.end();
    }
  });

  it('transaction mode: every pooled server connection is on the Unix socket', async () => {
    const t = await createTenantDb(stack);
    await setPool(stack, t, 'transaction', 3);
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => connected(t)));
    try {
      const peers = await Promise.all(clients.map((c) => peerSeenByCompute(c)));
      for (const p of peers) expect(p).toEqual({ addr: null, port: -1 });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('with PGWAKE_COMPUTE_UNIX_SOCKETS=false the gateway connects over TCP, in both modes', async () => {
    const session = await createTenantDb(stack);
    const pooled = await createTenantDb(stack);
    await setPool(stack, pooled, 'transaction', 2);
    const clients = [await connected(session, tcpGateway.port), await connected(pooled, tcpGateway.port)];
    try {
      for (const c of clients) {
        const peer = await peerSeenByCompute(c);
        expect(peer.addr).toBe('127.0.0.1');
        expect(peer.port).toBeGreaterThan(0);
      }
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('a cancel reaches a query on a Unix-socket connection, in both modes', async () => {
    const session = await createTenantDb(stack);
    const pooled = await createTenantDb(stack);
    await setPool(stack, pooled, 'transaction', 2);
    for (const t of [session, pooled]) {
      const client = await connected(t);
      try {
        expect((await peerSeenByCompute(client)).port).toBe(-1);
        expect(await cancelsASleep(t, client)).toBe('57014');
      } finally {
        await client.end();
      }
    }
  });

  it('a cancel falls back to TCP when the socket its connection used is gone', async () => {
    const t = await createTenantDb(stack);
    const client = await connected(t);
    try {
      expect((await peerSeenByCompute(client)).port).toBe(-1);
      // New connections on the path now fail with ENOENT; the open one and the TCP listener go on.
      await unlink((await dbRow(stack, t.db.id)).compute_socket_path!);
      expect(await cancelsASleep(t, client)).toBe('57014');
    } finally {
      await client.end();
    }
  });

  it('a socket path the gateway cannot open (missing, or not a socket) falls back to TCP, logged once per path', async () => {
    const t = await createTenantDb(stack);
    const warm = await connected(t);
    await warm.end();
    const notASocket = path.join(stack.dataDir, 'not-a-socket');
    await writeFile(notASocket, '');
    for (const bogus of [path.join(stack.dataDir, 'elsewhere', '.s.PGSQL.1'), notASocket]) {
      // What a gateway in another container sees: a route whose socket file is not in its filesystem.
      // The in-process coordinator tells the gateway's routes before the update returns.
      expect(await stack.ctx.catalog.dbs.update(t.db.id, { compute_socket_path: bogus }, { states: ['running'] })).toMatchObject({ compute_socket_path: bogus });
      for (let i = 0; i < 2; i++) {
        const client = await connected(t);
        try {
          expect((await peerSeenByCompute(client)).addr).toBe('127.0.0.1');
        } finally {
          await client.end();
        }
      }
      const fallbacks = logs.lines().filter((l) => l.msg === FALLBACK_LOG && l.socket_path === bogus);
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]).toMatchObject({ level: 30, code: bogus === notASocket ? 'ECONNREFUSED' : 'ENOENT' });
    }
  });
});

describe('which routes get a Unix socket', () => {
  const socketPath = '/var/lib/pgwake/computes/db_x/data/socket/.s.PGSQL.5432';

  it('only a loopback host with a socket path, and only while enabled', () => {
    const on = new ComputeSockets(true);
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(on.pathFor({ host, socketPath })).toBe(socketPath);
    expect(on.pathFor({ host: '10.1.2.3', socketPath })).toBeNull();
    expect(on.pathFor({ host: 'compute-7.internal', socketPath })).toBeNull();
    expect(on.pathFor({ host: '127.0.0.1' })).toBeNull();
    expect(new ComputeSockets(false).pathFor({ host: '127.0.0.1', socketPath })).toBeNull();
  });

  it('never a path longer than the OS takes', () => {
    const on = new ComputeSockets(true);
    const longest = `/${'a'.repeat(MAX_UNIX_SOCKET_PATH_BYTES - 1)}`;
    expect(on.pathFor({ host: '127.0.0.1', socketPath: longest })).toBe(longest);
    expect(on.pathFor({ host: '127.0.0.1', socketPath: `${longest}b` })).toBeNull();
  });
});
