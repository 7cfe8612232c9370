import { describe, expect, it } from 'vitest';
import { firstSocketDir, socketFile } from '../../bench/fixtures/compute-socket.js';
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
