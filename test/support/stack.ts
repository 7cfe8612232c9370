import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { createLogger, loadConfig, type Config } from '../../core/index.js';
import { startStack, type RoleName, type Stack } from '../../bin/stack.js';

export interface TestStack extends Stack {
  config: Config;
  dataDir: string;
  /** Stops every role and removes the data dir. */
  destroy(): Promise<void>;
}

/**
 * A whole pgwake on real servers in a fresh temp data dir, every port chosen by
 * the OS. `env` overrides settings by their env names (PGWAKE_…).
 */
export async function startTestStack(
  env: Record<string, string> = {},
  roles: RoleName[] = ['autoscaler', 'gateway', 'control-api'],
  /** Where the stack's log lines go (its level still from PGWAKE_LOG_LEVEL): a test that reads the logs passes a stream. */
  options: { logDestination?: DestinationStream } = {},
): Promise<TestStack> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'pgwake-test-'));
  const { chmod } = await import('node:fs/promises');
  await chmod(dataDir, 0o755); // Postgres runs as an unprivileged user when tests run as root
  const config = loadConfig({
    PGWAKE_DATA_DIR: dataDir,
    PGWAKE_HTTP_PORT: '0',
    PGWAKE_GATEWAY_PORT: '0',
    PGWAKE_METRICS_PORT: '0',
    PGWAKE_LOG_LEVEL: process.env.PGWAKE_TEST_LOG_LEVEL ?? 'silent',
    PGWAKE_MIN_SUSPEND_TIMEOUT_SECONDS: '1',
    ...env,
  });
  const stack = await startStack(config, roles, createLogger(config.logLevel, 'pgwake-test', options.logDestination));
  return {
    ...stack,
    config,
    dataDir,
    async destroy() {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
