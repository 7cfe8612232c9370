import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { giveTo, type ProcessOwner } from './os-user.js';

export interface PostgresServerOptions {
  binDir: string;
  dataDir: string;
  host: string;
  port: number;
  owner: ProcessOwner | undefined;
  settings?: Record<string, string>;
  startTimeoutMs: number;
  /** Called with each line the server writes to stderr (its log). */
  onLog?: (line: string) => void;
  /**
   * The log line that says the server is up; default: ready to accept connections.
   * A standby with hot_standby off never says that until promoted: it waits for streaming instead.
   */
  readyLine?: string;
}

const READY = 'database system is ready to accept connections';
const TAIL_LINES = 20;

/** Longest Unix-domain socket path Linux takes (sun_path is 108 bytes with its NUL); Postgres refuses longer ones too. */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

/** Where a server on `dataDir` puts its Unix-domain socket (`unix_socket_directories`). */
function socketDirOf(dataDir: string): string {
  return path.join(dataDir, 'socket');
}

/** The socket file a server on `dataDir` listening on `port` creates, or null when the path is too long to connect to. */
export function unixSocketPathOf(dataDir: string, port: number): string | null {
  const file = path.join(socketDirOf(path.resolve(dataDir)), `.s.PGSQL.${port}`);
  return Buffer.byteLength(file) <= MAX_UNIX_SOCKET_PATH_BYTES ? file : null;
}

/**
 * One running `postgres` process. Readiness is read from the server's own log
 * line as it is written, not polled: a start takes tens of milliseconds.
 */
export class PostgresServer {
  readonly exited: Promise<number | null>;
  #child: ChildProcess;
  #tail: string[] = [];
  #exitCode: number | null | undefined = undefined;

  private constructor(child: ChildProcess, readonly options: PostgresServerOptions) {
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? null : 0);
        resolve(code);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Its Unix-domain socket, or null when the path would be too long to use. */
  get unixSocketPath(): string | null {
    return unixSocketPathOf(this.options.dataDir, this.options.port);
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  get lastLog(): string {
    return this.#tail.join('\n');
  }

  static async start(o: PostgresServerOptions): Promise<PostgresServer> {
    const socketDir = socketDirOf(o.dataDir);
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    await giveTo(o.owner, socketDir);
    const settings: Record<string, string> = {
      listen_addresses: o.host,
      port: String(o.port),
      unix_socket_directories: socketDir,
      lc_messages: 'C',
      logging_collector: 'off',
      log_min_messages: 'warning',
      log_line_prefix: '',
      ...o.settings,
    };
    const args = ['-D', o.dataDir];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
    const child = spawn(path.join(o.binDir, 'postgres'), args, {
      uid: o.owner?.uid,
      gid: o.owner?.gid,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const server = new PostgresServer(child, o);
    await server.#waitReady();
    return server;
  }

  #waitReady(): Promise<void> {
    const readyLine = this.options.readyLine ?? READY;
    return new Promise((resolve, reject) => {
      let ready = false;
      let buffered = '';
      const timer = setTimeout(() => {
        if (ready) return;
        this.#child.kill('SIGQUIT');
        reject(new Error(`postgres in ${this.options.dataDir} not ready after ${this.options.startTimeoutMs} ms\n${this.lastLog}`));
      }, this.options.startTimeoutMs);
      this.#child.stderr!.setEncoding('utf8');
      this.#child.stderr!.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.#tail.push(line);
          if (this.#tail.length > TAIL_LINES) this.#tail.shift();
          this.options.onLog?.(line);
          if (!ready && line.includes(readyLine)) {
            ready = true;
            clearTimeout(timer);
            resolve();
          }
        }
      });
      this.#child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      this.#child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`postgres in ${this.options.dataDir} exited before it was ready (code ${code}, signal ${signal})\n${this.lastLog}`));
      });
    });
  }

  /**
   * `fast` (SIGINT) rolls back open transactions and checkpoints: nothing committed is lost.
   * `immediate` (SIGQUIT) is for a process that must go now; recovery replays WAL on the next start.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast', timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.#child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
