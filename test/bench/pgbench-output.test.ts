import { describe, expect, it } from 'vitest';
import { describeRunLength, parsePgbenchSummary, parseProgressLines, parseTransactionLog } from '../../bench/tools/pgbench.js';

// Captured from pgbench 15.18 against a Postgres 18 compute.
const SUMMARY = `pgbench (15.18 (Debian 15.18-0+deb12u1), server 18.4)
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 21211
number of failed transactions: 0 (0.000%)
latency average = 0.186 ms
latency stddev = 0.623 ms
initial connection time = 23.350 ms
tps = 10727.281463 (without initial connection time)
`;
const RECONNECT = `number of failed transactions: 3 (4.110%)
latency average = 28.069 ms
average connection time = 24.513 ms
tps = 71.252184 (including reconnection times)
`;

describe('pgbench output', () => {
  it('reads the summary: tps, latency, failures, connection time', () => {
    expect(parsePgbenchSummary(SUMMARY)).toEqual({ tps: 10727.281463, transactions: 21211, latencyMs: 0.186, failed: 0, connectionMs: 23.35 });
    expect(parsePgbenchSummary(RECONNECT)).toEqual({ tps: 71.252184, transactions: 0, latencyMs: 28.069, failed: 3, connectionMs: 24.513 });
  });

  it('reads a run that finished no transaction as 0 tps', () => {
    const out = 'duration: 1 s\nnumber of transactions actually processed: 0\nnumber of failed transactions: 0 (NaN%)\n';
    expect(parsePgbenchSummary(out)).toMatchObject({ tps: 0, transactions: 0, failed: 0 });
  });

  it('refuses output without a tps line', () => {
    expect(() => parsePgbenchSummary('pgbench: error: connection to server failed')).toThrow(/no tps/);
  });

  it('reads -P progress lines into a time series, with or without failures and lag', () => {
    const stderr = [
      'pgbench (15.18 (Debian 15.18-0+deb12u1), server 18.4)',
      'progress: 1.0 s, 10519.3 tps, lat 0.186 ms stddev 0.633, 0 failed',
      'progress: 2.0 s, 0.0 tps, lat NaN ms stddev NaN, 12 failed',
      'progress: 3.0 s, 9000.5 tps, lat 0.220 ms stddev 0.100, (lag 0.010 ms), 1 failed',
      'progress: 4.0 s, 8000.0 tps, lat 0.250 ms stddev 0.300',
      'pgbench: error: client 3 script 0 aborted in command 4 query 0',
    ].join('\n');
    expect(parseProgressLines(stderr)).toEqual([
      { t: 1, tps: 10519.3, latencyMs: 0.186, failed: 0 },
      { t: 2, tps: 0, latencyMs: Number.NaN, failed: 12 },
      { t: 3, tps: 9000.5, latencyMs: 0.22, failed: 1 },
      { t: 4, tps: 8000, latencyMs: 0.25, failed: 0 },
    ]);
  });

  it('reads -l transaction logs in ms and skips failed transactions', () => {
    const log = ['0 132 318 0 1795505041 134151', '1 832 49 0 1795505041 224585', '1 833 failed 0 1795505041 224999', ''].join('\n');
    expect(parseTransactionLog(log)).toEqual([0.318, 0.049]);
  });

  it('names a run length as the pgbench option that sets it', () => {
    expect(describeRunLength({ seconds: 5 })).toBe('-T 5');
    expect(describeRunLength({ transactionsPerClient: 300 })).toBe('-t 300');
  });
});
