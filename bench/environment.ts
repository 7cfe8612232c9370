import { execFileSync } from 'node:child_process';
import { findHaproxy } from './fixtures/haproxy.js';
import { pgbouncerVersion } from './fixtures/pgbouncer.js';
import { openFilesLimit } from './tools/proc.js';

function pgbenchVersion(): string {
  try {
    return execFileSync('pgbench', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'pgbench not found';
  }
}

/** Facts about this run that every scenario shares: tool versions and descriptor limits. */
export async function describeEnvironment(): Promise<string[]> {
  const limit = await openFilesLimit('self');
  const bouncer = pgbouncerVersion();
  const haproxy = findHaproxy();
  return [
    `${pgbenchVersion()}; ${bouncer ? `PgBouncer ${bouncer}` : 'PgBouncer not installed (its columns are left out)'}; ${haproxy ? `haproxy ${haproxy.version} (throughput's reference relay)` : 'haproxy not installed (throughput\'s reference relay is left out)'}.`,
    `Open-files limit of the bench process: ${limit.soft} (hard ${limit.hard}); pgwake and PgBouncer are started with their soft limit raised to their hard limit.`,
  ];
}
