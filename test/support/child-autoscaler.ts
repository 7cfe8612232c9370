import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Catalog,
  createLogger,
  createMetricsRegistry,
  InProcessCoordinator,
  loadConfig,
  loadOrCreateSecretKey,
  postgresBinDir,
  processOwnerFor,
  SecretBox,
  type RoleContext,
} from '../../core/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Inside a child process: the autoscaler role's context from the environment, as `pgwake autoscaler` builds it. */
export async function childAutoscalerContext(): Promise<RoleContext> {
  const config = loadConfig();
  const coordinator = new InProcessCoordinator();
  return {
    config,
    catalog: await Catalog.open(config.catalogUrl!, coordinator),
    coordinator,
    secrets: new SecretBox(loadOrCreateSecretKey(config.secretKey, config.dataDir)),
    logger: createLogger(config.logLevel, 'pgwake-test-child'),
    metrics: createMetricsRegistry(),
    binDir: postgresBinDir(config.pgBin),
    owner: processOwnerFor(config.computeOsUser),
  };
}

/** Inside a child process: a hook that stops for good (printing `REACHED <point>`) at `HANG_AT`. */
export async function hangAtNamedPoint(point: string): Promise<void> {
  if (point !== process.env.HANG_AT) return;
  process.stdout.write(`REACHED ${point}\n`);
  await new Promise(() => {});
}

/** Runs `script` (relative to the repo) as a child autoscaler until it prints `REACHED <point>`, then SIGKILLs it. */
export async function killChildAutoscalerAt(script: string, env: NodeJS.ProcessEnv, point: string, timeoutMs: number): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script)], {
    cwd: ROOT,
    env: { ...process.env, PGWAKE_LOG_LEVEL: 'error', ...env, HANG_AT: point },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child autoscaler did not reach ${point}:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`REACHED ${point}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the child autoscaler exited (${code}):\n${output}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
}
