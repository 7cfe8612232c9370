import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, rename, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyDataDir, freePort, PostgresServer, type Logger, type ProcessOwner, type Unsubscribe } from '../core/index.js';
import type { ComputeBootstrap, ComputeDriver, ComputeEndpoint, ComputeExit, ComputeSpec, ComputeStatus } from './compute-driver.js';
import type { ComputeTemplate } from './compute-template.js';

export interface LocalComputeDriverOptions {
  /** `<dataDir>/computes`: one `<db-id>/data` per db. */
  computesDir: string;
  binDir: string;
  owner: ProcessOwner | undefined;
  template: ComputeTemplate;
  /** Where writers listen: only the gateway on this machine needs to reach them. */
  host: string;
  startTimeoutMs: number;
  logger: Logger;
}

/**
 * Settings every local writer gets on top of its profile's. They keep a wake
 * short: no huge-page probe at start, no logging work on the way up.
 */
const WRITER_SETTINGS: Record<string, string> = {
  huge_pages: 'off',
  password_encryption: 'scram-sha-256',
  log_checkpoints: 'off',
};

/** Start failures that a second try on a fresh port (or a moment later) gets past. */
const TRANSIENT_START_FAILURE = /could not bind|Address already in use|pre-existing shared memory block|lock file .* already exists/i;
const START_ATTEMPTS = 4;

interface LocalWriter {
  server: PostgresServer;
  endpoint: ComputeEndpoint;
  startedAt: number;
  /** Set once we asked it to stop: its exit is then expected, not a crash. */
  stopping: boolean;
}

/**
 * Writers as Postgres processes on this machine (DESIGN §5): each db a data
 * directory under `<dataDir>/computes/<db-id>/data`, copied from the template,
 * its server run as `owner` when pgwake runs as root.
 */
export class LocalComputeDriver implements ComputeDriver {
  readonly kind = 'local';
  #writers = new Map<string, LocalWriter>();
  #exits = new EventEmitter();

  constructor(private readonly o: LocalComputeDriverOptions) {}

  dataDir(dbId: string): string {
    return path.join(this.#dbDir(dbId), 'data');
  }

  #dbDir(dbId: string): string {
    return path.join(this.o.computesDir, dbId);
  }

  async isProvisioned(dbId: string): Promise<boolean> {
    return existsSync(path.join(this.dataDir(dbId), 'PG_VERSION'));
  }

  async provision(spec: ComputeSpec, bootstrap: ComputeBootstrap): Promise<void> {
    if (await this.isProvisioned(spec.dbId)) return;
    const log = this.o.logger.child({ db_id: spec.dbId });
    // Built beside `data` and renamed into place: `data` exists only for a db whose role and database exist.
    const staging = path.join(this.#dbDir(spec.dbId), 'data.provisioning');
    await stopStrayPostmaster(staging, log);
    await rm(staging, { recursive: true, force: true });
    const template = await this.o.template.ensure();
    const t0 = performance.now();
    await copyDataDir(template, staging);
    const t1 = performance.now();
    const server = await this.#startServer(spec, staging, log);
    const t2 = performance.now();
    try {
      await bootstrap(this.#endpointOf(server));
    } finally {
      await server.stop('fast');
    }
    const t3 = performance.now();
    await rename(staging, this.dataDir(spec.dbId));
    log.info({ copy_ms: round(t1 - t0), start_ms: round(t2 - t1), bootstrap_and_stop_ms: round(t3 - t2) }, 'compute provisioned');
  }

  async start(spec: ComputeSpec): Promise<ComputeEndpoint> {
    const existing = this.#writers.get(spec.dbId);
    if (existing && existing.server.running && !existing.stopping) return existing.endpoint;
    if (existing) await this.stop(spec.dbId);
    if (!(await this.isProvisioned(spec.dbId))) throw new Error(`no data directory for ${spec.dbId}: it was never provisioned`);
    const log = this.o.logger.child({ db_id: spec.dbId });
    const dataDir = this.dataDir(spec.dbId);
    await stopStrayPostmaster(dataDir, log);
    const server = await this.#startServer(spec, dataDir, log);
    const writer: LocalWriter = { server, endpoint: this.#endpointOf(server), startedAt: Date.now(), stopping: false };
    this.#writers.set(spec.dbId, writer);
    void server.exited.then((code) => {
      if (this.#writers.get(spec.dbId) === writer) this.#writers.delete(spec.dbId);
      if (writer.stopping) return;
      const exit: ComputeExit = { dbId: spec.dbId, workerId: writer.endpoint.workerId, code, lastLog: server.lastLog };
      this.#exits.emit('exit', exit);
    });
    return writer.endpoint;
  }

  async stop(dbId: string): Promise<void> {
    const writer = this.#writers.get(dbId);
    if (writer) {
      writer.stopping = true;
      await writer.server.stop('fast');
      if (this.#writers.get(dbId) === writer) this.#writers.delete(dbId);
    }
    await stopStrayPostmaster(this.dataDir(dbId), this.o.logger.child({ db_id: dbId }));
  }

  async destroy(dbId: string): Promise<void> {
    await this.stop(dbId);
    const log = this.o.logger.child({ db_id: dbId });
    await stopStrayPostmaster(path.join(this.#dbDir(dbId), 'data.provisioning'), log);
    await rm(this.#dbDir(dbId), { recursive: true, force: true });
  }

  describe(dbId: string): ComputeStatus {
    const w = this.#writers.get(dbId);
    if (!w || !w.server.running) return { dbId, running: false, endpoint: null, pid: null, startedAt: null };
    return { dbId, running: true, endpoint: w.endpoint, pid: w.server.pid ?? null, startedAt: w.startedAt };
  }

  running(): ComputeStatus[] {
    return [...this.#writers.keys()].map((id) => this.describe(id)).filter((s) => s.running);
  }

  onExit(listener: (exit: ComputeExit) => void): Unsubscribe {
    this.#exits.on('exit', listener);
    return () => this.#exits.off('exit', listener);
  }

  #endpointOf(server: PostgresServer): ComputeEndpoint {
    return { host: server.options.host, port: server.options.port, workerId: `local/${os.hostname()}/${server.pid}` };
  }

  /** A free port can be taken by someone else before Postgres binds it, and a killed writer's children can hold its shared memory for a moment: retry those. */
  async #startServer(spec: ComputeSpec, dataDir: string, log: Logger): Promise<PostgresServer> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort(this.o.host);
      try {
        return await PostgresServer.start({
          binDir: this.o.binDir,
          dataDir,
          host: this.o.host,
          port,
          owner: this.o.owner,
          startTimeoutMs: this.o.startTimeoutMs,
          settings: { ...spec.profile.postgresSettings, ...WRITER_SETTINGS },
          onLog: (line) => log.debug({ component: 'compute' }, line),
        });
      } catch (err) {
        if (attempt >= START_ATTEMPTS || !TRANSIENT_START_FAILURE.test((err as Error).message)) throw err;
        log.warn({ attempt, err: (err as Error).message.split('\n')[0] }, 'compute start failed; retrying');
        await sleep(50 * attempt);
      }
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * Ends a postmaster that runs on `dataDir` but is not ours: one a previous pgwake
 * process left behind when it died. A lock file naming a process that is not
 * that postmaster is stale and goes.
 */
async function stopStrayPostmaster(dataDir: string, log: Logger): Promise<void> {
  const lockFile = path.join(dataDir, 'postmaster.pid');
  let pid: number;
  try {
    pid = Number((await readFile(lockFile, 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  if (!isAlive(pid)) return; // Postgres removes a lock file of a dead process itself.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.split('\0').includes(dataDir)) {
    await unlink(lockFile).catch(() => undefined);
    return;
  }
  log.warn({ pid }, 'stopping a compute a previous run left behind');
  for (const [signal, waitMs] of [['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) return;
      await sleep(10);
    }
  }
  throw new Error(`postmaster ${pid} on ${dataDir} does not stop`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
