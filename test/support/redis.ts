import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../core/index.js';

/** A real Redis for a test: its own port, no persistence. */
export interface TestRedis {
  url: string;
  port: number;
  /** Where it runs: `container` (testcontainers) or `redis-server` (a local binary). */
  kind: 'container' | 'redis-server';
  /** Stops Redis (its data is gone: no persistence), waits `downMs`, starts it again on the same port. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const HOW_TO_GET_IT =
  'Redis tests need a real Redis: start a Docker engine (tests then use testcontainers), or install the server binary: `apt-get install -y redis-server` (it must be on PATH; no service needs to run: each test starts its own).';

let dockerAnswers: Promise<boolean> | undefined;

/**
 * Redis the way DESIGN §6 says: in a container where a Docker engine runs, else a
 * local `redis-server` started on a free port with a temp dir. Neither: the test
 * fails, saying how to get one.
 */
export async function startTestRedis(): Promise<TestRedis> {
  dockerAnswers ??= new Promise((resolve) => execFile('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5_000 }, (err) => resolve(!err)));
  if (await dockerAnswers) return startContainer();
  if (spawnSync('redis-server', ['--version']).error) throw new Error(HOW_TO_GET_IT);
  return startLocal();
}

async function startContainer(): Promise<TestRedis> {
  const { GenericContainer } = await import('testcontainers');
  const port = await freePort();
  // The host port is fixed so a restarted container keeps the URL the coordinators use.
  const container = await new GenericContainer('redis:7-alpine').withExposedPorts({ container: 6379, host: port }).withCommand(['redis-server', '--save', '', '--appendonly', 'no']).start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kind: 'container',
    async restart(downMs = 0) {
      // Redis is the container's process: shutting it down stops the container, which `restart` starts again.
      await container.exec(['redis-cli', 'shutdown', 'nosave']).catch(() => undefined);
      await new Promise((r) => setTimeout(r, downMs));
      await container.restart();
      await untilPong(port, 10_000);
    },
    async stop() {
      await container.stop();
    },
  };
}

async function startLocal(): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwake-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    proc.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}) while starting: ${output}`))));
    exited.catch(() => undefined);
    await Promise.race([untilPong(port, 10_000), exited]);
    child = proc;
  };
  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await gone;
    }
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kind: 'redis-server',
    async restart(downMs = 0) {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once Redis on `port` answers PING. */
async function untilPong(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await pong(port)) return;
    if (Date.now() > until) throw new Error(`Redis on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}
