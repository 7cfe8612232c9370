import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeRoute, describeRoute, firstSocketDir, socketFile } from '../../bench/fixtures/compute-socket.js';
import { haproxyConfig, haproxyServerAddress } from '../../bench/fixtures/haproxy.js';
import { pgbouncerFiles } from '../../bench/fixtures/pgbouncer.js';
import { relayFloorNote } from '../../bench/scenarios/throughput.js';

const compute = { host: '127.0.0.1', port: 41234, user: 'u_bench', password: 'pw', database: 'bench' };
const overSocket = { ...compute, host: '/tmp/pgwake-bench-start-x/computes/db-1/data/socket' };

describe('how the bench\'s proxies reach a compute', () => {
  it('takes the first absolute dir of unix_socket_directories', () => {
    expect(firstSocketDir('/var/run/postgresql')).toBe('/var/run/postgresql');
    expect(firstSocketDir('@abstract, /tmp/a,/tmp/b')).toBe('/tmp/a');
    expect(firstSocketDir('')).toBeUndefined();
    expect(firstSocketDir('@only-abstract')).toBeUndefined();
    expect(socketFile('/tmp/a', 5432)).toBe('/tmp/a/.s.PGSQL.5432');
  });

  it('gives PgBouncer the socket dir as host, or 127.0.0.1 over TCP', () => {
    const unix = pgbouncerFiles(overSocket, { poolMode: 'transaction', poolSize: 10, dir: '/tmp/pb', port: 6000, authSecret: 'SCRAM-SHA-256$4096:abc' });
    expect(unix.ini).toContain(`bench = host=${overSocket.host} port=41234 dbname=bench\n`);
    expect(unix.ini).toContain('pool_mode = transaction\ndefault_pool_size = 10\n');
    expect(unix.ini).toContain('listen_port = 6000\n');
    expect(unix.userlist).toBe('"u_bench" "SCRAM-SHA-256$4096:abc"\n');
    const tcp = pgbouncerFiles(compute, { poolMode: 'session', poolSize: 100, dir: '/tmp/pb', port: 6000 });
    expect(tcp.ini).toContain('bench = host=127.0.0.1 port=41234 dbname=bench\n');
    expect(tcp.userlist).toBe('"u_bench" "pw"\n');
  });

  it('gives haproxy the same transport: unix@<socket file> or host:port', () => {
    expect(haproxyServerAddress(overSocket)).toBe(`unix@${overSocket.host}/.s.PGSQL.41234`);
    expect(haproxyServerAddress(compute)).toBe('127.0.0.1:41234');
    const config = haproxyConfig(compute, 7000);
    expect(config).toContain('  mode tcp\n');
    expect(config).toContain('  nbthread 1\n');
    expect(config).toContain('  bind 127.0.0.1:7000\n');
    expect(config).toContain('  server s 127.0.0.1:41234\n');
  });
});

describe('the reference relay\'s note', () => {
  it('says the session goal is beyond the machine when the relay itself misses it', () => {
    const note = relayFloorNote(0.61, 2);
    expect(note).toContain('reaches 0.61 × direct');
    expect(note).toContain('asks more than even a C byte relay reaches on these 2 cores');
  });

  it('does not say so when the relay reaches the goal, nor quote a ratio it has not got', () => {
    expect(relayFloorNote(0.95, 8)).not.toContain('asks more');
    expect(relayFloorNote(0.95, 8)).toContain('at or above');
    expect(relayFloorNote(undefined, 2)).not.toMatch(/reaches \d/);
    expect(relayFloorNote(Number.NaN, 2)).not.toMatch(/reaches/);
  });
});

describe('the compute route falls back to TCP, saying why', () => {
  const db = { id: 'db-1', name: 'bench', pgUser: 'u_bench', pgPassword: 'pw' };
  const showing = (setting: string | Error) => ({ computeSocketDirectories: async () => (setting instanceof Error ? Promise.reject(setting) : setting) });

  it('when the compute has no socket dir, the setting cannot be read, or the path is too long', async () => {
    expect(await computeRoute(showing(''), db, compute)).toEqual({ backend: compute, transport: 'tcp', reason: 'the compute has no Unix socket dir' });
    expect((await computeRoute(showing(new Error('permission denied')), db, compute)).reason).toContain('permission denied');
    const long = await computeRoute(showing(`/tmp/${'d'.repeat(120)}`), db, compute);
    expect([long.transport, long.backend.host, long.reason]).toEqual(['tcp', '127.0.0.1', 'its socket path is longer than 107 bytes']);
  });

  it('when no server answers on the socket (pg_isready as the proxies\' user)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pgwake-bench-nosocket-'));
    try {
      const route = await computeRoute(showing(dir), db, compute);
      expect(route.transport).toBe('tcp');
      expect(route.backend).toBe(compute);
      expect(route.reason).toMatch(/pg_isready/);
      expect(describeRoute(route)).toMatch(/^over TCP \(127\.0\.0\.1\), not its Unix socket: pg_isready/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
