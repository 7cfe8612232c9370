import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { copyDataDir, freePort, giveTo, INTERNAL_SUPERUSER, PostgresServer, type Logger, type ProcessOwner, type Unsubscribe } from '../core/index.js';
import type { CandidateSpec, CandidateStartOptions, ComputeBootstrap, ComputeDriver, ComputeEndpoint, ComputeExit, ComputeSpec, ComputeStatus, ReplicationProgress } from './compute-driver.js';
import type { ComputeTemplate } from './compute-template.js';
import { asSuperuser, connectAsSuperuser } from './compute-sql.js';
import { copyForBaseBackup, HANDOFF_SLOT, liveChildren, makeStandby, readTimelineSwitchpoint, stripStandbySettings, writeComputeHba } from './local-replica.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';

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
  /** The internal superuser's password: a candidate logs in with it to stream from its writer. */
  superuserPassword: string;
}

/**
 * Settings every local writer gets on top of its profile's. They keep a wake
 * short: no huge-page probe at start, no logging work on the way up. WAL is
 * kept at `replica` level with room for a handoff's candidate to stream.
 */
const WRITER_SETTINGS: Record<string, string> = {
  huge_pages: 'off',
  password_encryption: 'scram-sha-256',
  log_checkpoints: 'off',
  wal_level: 'replica',
  max_wal_senders: '4',
  max_replication_slots: '4',
};

/**
 * A candidate streams without hot standby: it then need not have the writer's
 * max_connections and worker counts, so it can be smaller (a scale-down). It
 * reports its replay position every second, which CATCHING_UP reads on the writer.
 */
const CANDIDATE_SETTINGS: Record<string, string> = {
  hot_standby: 'off',
  wal_receiver_status_interval: '1s',
};

/** A standby with hot_standby off says this once it streams, and nothing like "ready" until promoted. */
const STREAMING_LINE = 'started streaming WAL from primary';
const READY_LINE = 'database system is ready to accept connections';

/** Start failures that a second try on a fresh port (or a moment later) gets past. */
const TRANSIENT_START_FAILURE = /could not bind|Address already in use|pre-existing shared memory block|lock file .* already exists/i;
const START_ATTEMPTS = 4;

/** How often the fence and the wait for the candidate look again: each look is a query on a session already open. */
const FENCE_POLL_MS = 1;
/** SQLSTATE 57P03: what a postmaster in shutdown answers a new connection. */
const CANNOT_CONNECT_NOW = '57P03';

/** The directory a db's writer starts from: `data` at first, `data.t<term>` after a handoff. Named by the file `current`. */
const INITIAL_DATA = 'data';
const CURRENT_FILE = 'current';
const DATA_NAME = /^data(\.t\d+)?$/;
const candidateDirName = (term: number) => `data.t${term}`;

interface LocalWriter {
  server: PostgresServer;
  endpoint: ComputeEndpoint;
  startedAt: number;
  /** Set once we asked it to stop: its exit is then expected, not a crash. */
  stopping: boolean;
}

interface LocalCandidate extends LocalWriter {
  term: number;
  dir: string;
  /** The candidate's log, line by line: a promotion is done when it says ready. */
  log: EventEmitter;
  /** A superuser session on the writer, opened before the freeze: replication progress, session ends, the fence. */
  writerSession: pg.Client;
  /** Where the base backup ended: the candidate is consistent once it replayed this far. */
  backupEnd: Lsn;
  promoted: boolean;
}

/**
 * Writers as Postgres processes on this machine (DESIGN §5): each db a data
 * directory under `<dataDir>/computes/<db-id>/`, first `data` (copied from the
 * template), after each handoff the candidate's `data.t<term>`, named by the
 * file `current`. Servers run as `owner` when pgwake runs as root.
 */
export class LocalComputeDriver implements ComputeDriver {
  readonly kind = 'local';
  #writers = new Map<string, LocalWriter>();
  #candidates = new Map<string, LocalCandidate>();
  /** A fenced writer whose candidate was adopted, and the session that holds its smart shutdown back: stopped by finishHandoff, after the new route is out. */
  #retired = new Map<string, { writer: LocalWriter; session: pg.Client }>();
  /** The port a fenced writer listened on: a rollback restarts it there if it is still free. */
  #fencedPorts = new Map<string, number>();
  #current = new Map<string, string>();
  #exits = new EventEmitter();

  constructor(private readonly o: LocalComputeDriverOptions) {}

  /** The data directory the db's writer starts from. */
  dataDir(dbId: string): string {
    return path.join(this.#dbDir(dbId), this.#currentName(dbId));
  }

  #dbDir(dbId: string): string {
    return path.join(this.o.computesDir, dbId);
  }

  #currentName(dbId: string): string {
    let name = this.#current.get(dbId);
    if (name === undefined) {
      name = INITIAL_DATA;
      try {
        const read = readFileSync(path.join(this.#dbDir(dbId), CURRENT_FILE), 'utf8').trim();
        if (DATA_NAME.test(read)) name = read;
      } catch {
        // no handoff yet: `data`
      }
      this.#current.set(dbId, name);
    }
    return name;
  }

  adoptedTerm(dbId: string): number | null {
    const m = /^data\.t(\d+)$/.exec(this.#currentName(dbId));
    return m ? Number(m[1]) : null;
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
    await writeComputeHba(staging, this.o.owner); // templates made before handoffs let any role ask for replication
    const t1 = performance.now();
    const server = await this.#startServer(spec.profile.postgresSettings, staging, log);
    const t2 = performance.now();
    try {
      await bootstrap(this.#endpointOf(server));
    } finally {
      await server.stop('fast');
    }
    const t3 = performance.now();
    await rm(path.join(this.#dbDir(spec.dbId), CURRENT_FILE), { force: true });
    this.#current.delete(spec.dbId);
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
    const server = await this.#startServer(spec.profile.postgresSettings, dataDir, log, { port: this.#fencedPorts.get(spec.dbId) });
    this.#fencedPorts.delete(spec.dbId);
    const writer: LocalWriter = { server, endpoint: this.#endpointOf(server), startedAt: Date.now(), stopping: false };
    this.#track(spec.dbId, writer);
    return writer.endpoint;
  }

  /** From now on `proc` is the db's writer: its exit unasked is a crash the controller hears of. */
  #track(dbId: string, proc: LocalWriter): void {
    this.#writers.set(dbId, proc);
    void proc.server.exited.then((code) => {
      if (this.#writers.get(dbId) !== proc) return;
      this.#writers.delete(dbId);
      if (proc.stopping) return;
      const exit: ComputeExit = { dbId, workerId: proc.endpoint.workerId, code, lastLog: proc.server.lastLog };
      this.#exits.emit('exit', exit);
    });
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
    await this.discardCandidate(dbId);
    const log = this.o.logger.child({ db_id: dbId });
    await stopStrayPostmaster(path.join(this.#dbDir(dbId), 'data.provisioning'), log);
    await rm(this.#dbDir(dbId), { recursive: true, force: true });
    this.#current.delete(dbId);
  }

  describe(dbId: string): ComputeStatus {
    return statusOf(dbId, this.#writers.get(dbId));
  }

  describeCandidate(dbId: string): ComputeStatus {
    return statusOf(dbId, this.#candidates.get(dbId));
  }

  running(): ComputeStatus[] {
    return [...this.#writers.keys()].map((id) => this.describe(id)).filter((s) => s.running);
  }

  onExit(listener: (exit: ComputeExit) => void): Unsubscribe {
    this.#exits.on('exit', listener);
    return () => this.#exits.off('exit', listener);
  }

  /**
   * A base backup of the running writer with Postgres's own backup API (a
   * physical slot made first keeps every WAL segment from the backup's start),
   * the copy made a standby that streams from the writer, started at the
   * candidate's profile. Resolves once it streams. Anything a failed attempt
   * made is removed again.
   */
  async startCandidate(spec: CandidateSpec, o: CandidateStartOptions): Promise<ComputeEndpoint> {
    const { dbId } = spec;
    const writer = this.#writers.get(dbId);
    if (!writer || !writer.server.running || writer.stopping) throw new Error(`db ${dbId} has no running writer to copy`);
    const log = this.o.logger.child({ db_id: dbId, candidate_writer_term: spec.term });
    await this.discardCandidate(dbId);
    const dir = path.join(this.#dbDir(dbId), candidateDirName(spec.term));
    const session = await connectAsSuperuser(writer.endpoint, this.o.superuserPassword);
    let candidate: LocalCandidate | undefined;
    try {
      const t0 = performance.now();
      await session.query('SELECT pg_create_physical_replication_slot($1, true)', [HANDOFF_SLOT]);
      await session.query('SELECT pg_backup_start($1, true)', [`pgwake handoff to ${candidateDirName(spec.term)}`]);
      try {
        await copyForBaseBackup(this.dataDir(dbId), dir, this.o.owner);
      } catch (err) {
        await session.query('SELECT pg_backup_stop(false)').catch(() => undefined);
        throw err;
      }
      const stop = (await session.query<{ lsn: string; labelfile: string; spcmapfile: string }>('SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)')).rows[0]!;
      const t1 = performance.now();
      await makeStandby(
        dir,
        { labelFile: stop.labelfile, tablespaceMap: stop.spcmapfile, primaryHost: writer.endpoint.host, primaryPort: writer.endpoint.port, superuserPassword: this.o.superuserPassword, applicationName: candidateDirName(spec.term) },
        this.o.owner,
      );
      o.signal.throwIfAborted();
      await o.beforeStart?.(dir);
      const lines = new EventEmitter().setMaxListeners(0);
      const server = await this.#startServer({ ...spec.profile.postgresSettings, ...CANDIDATE_SETTINGS }, dir, log, {
        readyLine: STREAMING_LINE,
        startTimeoutMs: Math.max(100, o.startTimeoutMs),
        onLine: (line) => lines.emit('line', line),
      });
      candidate = { server, endpoint: this.#endpointOf(server), startedAt: Date.now(), stopping: false, term: spec.term, dir, log: lines, writerSession: session, backupEnd: parseLsn(stop.lsn), promoted: false };
      this.#candidates.set(dbId, candidate);
      const c = candidate;
      void server.exited.then((code) => {
        if (this.#candidates.get(dbId) === c) this.#candidates.delete(dbId);
        if (!c.stopping && this.#writers.get(dbId) !== c) log.warn({ code, last_log: server.lastLog }, 'candidate writer exited');
      });
      log.info({ backup_ms: round(t1 - t0), start_ms: round(performance.now() - t1), port: candidate.endpoint.port }, 'candidate streaming from the writer');
      o.signal.throwIfAborted();
      return candidate.endpoint;
    } catch (err) {
      if (!candidate) await session.end().catch(() => undefined);
      await this.discardCandidate(dbId);
      throw err;
    }
  }

  async candidateProgress(dbId: string): Promise<ReplicationProgress> {
    const c = this.#candidate(dbId);
    const { rows } = await c.writerSession.query<{ writer_lsn: string; replay_lsn: string | null }>(
      `SELECT pg_current_wal_lsn()::text AS writer_lsn,
              (SELECT replay_lsn::text FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming' LIMIT 1) AS replay_lsn`,
      [candidateDirName(c.term)],
    );
    const writerLsn = parseLsn(rows[0]!.writer_lsn);
    const replayLsn = rows[0]!.replay_lsn === null ? null : parseLsn(rows[0]!.replay_lsn);
    return { writerLsn, replayLsn, lagBytes: replayLsn === null ? null : writerLsn > replayLsn ? writerLsn - replayLsn : 0n, consistent: replayLsn !== null && replayLsn >= c.backupEnd };
  }

  async terminateClientSessions(dbId: string): Promise<number> {
    const { rows } = await this.#candidate(dbId).writerSession.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND usename <> $1`,
      [INTERNAL_SUPERUSER],
    );
    return rows[0]!.n;
  }

  /**
   * Fences the writer without a shutdown checkpoint (which cost 40-100 ms of the
   * freeze): a smart shutdown (SIGTERM) makes its postmaster refuse every new
   * connection while the sessions open go on. Every client session but ours is
   * ended; once a probe is refused, every process that could still run one is a
   * child of the postmaster, so the fence waits until each live child is listed
   * in pg_stat_activity as something else, or was listed as a session and has
   * left the list (its transaction ended before its entry did). Nothing can
   * commit there after that: the WAL inserted then is the last any acknowledged
   * commit needs (flushed first if an asynchronous commit left it unflushed).
   * The writer stays up, refusing connections, until the handoff ends
   * (finishHandoff stops it) or rolls back (start restarts it).
   */
  async fenceWriter(dbId: string, signal: AbortSignal): Promise<Lsn> {
    const writer = this.#writers.get(dbId);
    if (!writer || !writer.server.running || writer.server.pid === undefined) throw new Error(`db ${dbId} has no running writer to fence`);
    const session = this.#candidate(dbId).writerSession;
    const postmaster = writer.server.pid;
    const t0 = performance.now();
    writer.stopping = true;
    this.#fencedPorts.set(dbId, writer.endpoint.port);
    process.kill(postmaster, 'SIGTERM');
    const refused = this.#untilRefused(writer.endpoint, dbId, signal);
    refused.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    let t1 = 0;
    // Every pid pg_stat_activity listed, and the client sessions among them. A session gone from the
    // list has aborted what it had open (its transaction ends before its entry does): it can commit nothing more.
    const seen = new Set<number>();
    const ended = new Set<number>();
    for (;;) {
      signal.throwIfAborted();
      const { rows } = await session.query<{ pid: number; client: boolean }>(
        `SELECT pid, backend_type = 'client backend' AND pid <> pg_backend_pid() AS client,
                CASE WHEN backend_type = 'client backend' AND pid <> pg_backend_pid() THEN pg_terminate_backend(pid) END AS ended
           FROM pg_stat_activity`,
      );
      for (const r of rows) {
        seen.add(r.pid);
        if (r.client) ended.add(r.pid);
      }
      if (!rows.some((r) => r.client)) {
        if (!t1) {
          await refused; // from here on the postmaster starts no session
          t1 = performance.now();
        }
        // A child never listed may be a session forked before the refusal that has not registered yet.
        if ((await liveChildren(postmaster)).every((pid) => seen.has(pid))) break;
      }
      await sleep(FENCE_POLL_MS);
    }
    const t2 = performance.now();
    const { rows } = await session.query<{ inserted: string; flushed: string }>('SELECT pg_current_wal_insert_lsn()::text AS inserted, pg_current_wal_flush_lsn()::text AS flushed');
    const last = parseLsn(rows[0]!.inserted);
    // An asynchronous commit's WAL may wait for the WAL writer (up to wal_writer_delay): a synchronous commit of ours flushes it now.
    const unflushed = parseLsn(rows[0]!.flushed) < last;
    if (unflushed) await session.query('BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id(); COMMIT');
    this.o.logger.info({ db_id: dbId, sessions_ended: ended.size, sessions_ended_ms: round(t1 - t0), children_settled_ms: round(t2 - t1), wal_end_ms: round(performance.now() - t2), flushed_by_fence: unflushed, wal_end: formatLsn(last) }, 'writer fenced');
    return last;
  }

  /** Resolves once the postmaster refuses a new connection (57P03): it is in shutdown and forks no more sessions. */
  async #untilRefused(endpoint: ComputeEndpoint, dbId: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const refused = await connectAsSuperuser(endpoint, this.o.superuserPassword).then(
        async (probe) => {
          await probe.end().catch(() => undefined);
          return false;
        },
        (err: Error & { code?: string }) => {
          if (err.code === CANNOT_CONNECT_NOW) return true;
          throw new Error(`the writer of ${dbId} went away while fenced: ${err.message}`);
        },
      );
      if (refused) return;
      await sleep(FENCE_POLL_MS);
    }
  }

  /** Waits until the candidate has received and flushed the writer's WAL up to `lsn`: a promotion then replays it all. */
  async awaitCandidateFlushed(dbId: string, lsn: Lsn, signal: AbortSignal): Promise<void> {
    const c = this.#candidate(dbId);
    for (;;) {
      signal.throwIfAborted();
      if (!c.server.running) throw new Error('the candidate is not running');
      const { rows } = await c.writerSession.query<{ flushed: string }>(`SELECT flush_lsn::text AS flushed FROM pg_stat_replication WHERE application_name = $1 AND flush_lsn IS NOT NULL`, [candidateDirName(c.term)]);
      if (rows.some((r) => parseLsn(r.flushed) >= lsn)) return;
      await sleep(FENCE_POLL_MS);
    }
  }

  /**
   * Promotes the candidate (what `pg_ctl promote` does: a `promote` file and
   * SIGUSR1). A promotion first replays every WAL record the candidate received;
   * its new timeline's switchpoint then says how far that was, and it must reach
   * the end of the fenced writer's WAL, or a commit could be missing.
   */
  async promoteCandidate(dbId: string, fencedAt: Lsn, signal: AbortSignal): Promise<ComputeEndpoint> {
    const c = this.#candidate(dbId);
    if (!c.server.running || c.server.pid === undefined) throw new Error('the candidate is not running');
    const ready = new Promise<void>((resolve, reject) => {
      const onLine = (line: string) => {
        if (!line.includes(READY_LINE)) return;
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(new Error('promotion did not finish before the deadline'));
      };
      const done = () => {
        c.log.off('line', onLine);
        signal.removeEventListener('abort', onAbort);
      };
      c.log.on('line', onLine);
      signal.addEventListener('abort', onAbort, { once: true });
      void c.server.exited.then(() => {
        done();
        reject(new Error(`the candidate exited during promotion\n${c.server.lastLog}`));
      });
    });
    // If signalling fails below, nobody awaits `ready`; its later rejection must not go unhandled.
    ready.catch(() => undefined);
    const promoteFile = path.join(c.dir, 'promote');
    await writeFile(promoteFile, '');
    await giveTo(this.o.owner, promoteFile);
    process.kill(c.server.pid, 'SIGUSR1');
    await ready;
    const switchpoint = await readTimelineSwitchpoint(c.dir);
    if (switchpoint === null || switchpoint < fencedAt) {
      throw new Error(`the candidate replayed WAL only to ${switchpoint === null ? 'nowhere' : formatLsn(switchpoint)}; the fenced writer's WAL ends at ${formatLsn(fencedAt)}`);
    }
    c.promoted = true;
    return c.endpoint;
  }

  /**
   * The promoted candidate is the db's writer from now on: `current` names its
   * directory (written aside and renamed, so a crash leaves one or the other).
   * The old writer's directory stays until `removeRetired`.
   */
  async adoptCandidate(dbId: string): Promise<ComputeEndpoint> {
    const c = this.#candidate(dbId);
    if (!c.promoted) throw new Error('only a promoted candidate can be adopted');
    const name = path.basename(c.dir);
    const pointer = path.join(this.#dbDir(dbId), CURRENT_FILE);
    await writeFile(`${pointer}.new`, `${name}\n`);
    await rename(`${pointer}.new`, pointer);
    this.#current.set(dbId, name);
    this.#candidates.delete(dbId);
    this.#fencedPorts.delete(dbId);
    const old = this.#writers.get(dbId);
    if (old && old !== c) this.#retired.set(dbId, { writer: old, session: c.writerSession });
    c.startedAt = Date.now();
    this.#track(dbId, c);
    return c.endpoint;
  }

  /**
   * After the new route is out: the replication credential leaves the new
   * writer's postgresql.auto.conf, and the retired writer's directory goes.
   */
  async finishHandoff(dbId: string): Promise<void> {
    await this.#stopRetired(dbId);
    const writer = this.#writers.get(dbId);
    if (writer?.server.running) {
      await asSuperuser(writer.endpoint, this.o.superuserPassword, async (client) => {
        await client.query('ALTER SYSTEM RESET primary_conninfo');
        await client.query('ALTER SYSTEM RESET primary_slot_name');
        await client.query('SELECT pg_reload_conf()');
      });
    } else {
      await stripStandbySettings(this.dataDir(dbId));
    }
    await this.#removeAllBut(dbId, this.#currentName(dbId));
  }

  /**
   * Stops a candidate (immediate: its data is thrown away) and removes every
   * data directory of the db but the writer's, with whatever a crashed run left
   * running in them; drops the handoff's slot on the writer, so it keeps no WAL
   * for a standby that is gone.
   */
  async discardCandidate(dbId: string): Promise<void> {
    await this.#stopRetired(dbId);
    const c = this.#candidates.get(dbId);
    if (c) {
      c.stopping = true;
      await c.writerSession.end().catch(() => undefined);
      await c.server.stop('immediate', 5_000);
      this.#candidates.delete(dbId);
    }
    await this.#removeAllBut(dbId, this.#currentName(dbId));
    await this.#dropHandoffSlot(dbId);
  }

  /** The fenced writer a handoff left behind goes: immediately, its data directory is removed next. */
  async #stopRetired(dbId: string): Promise<void> {
    const retired = this.#retired.get(dbId);
    if (!retired) return;
    this.#retired.delete(dbId);
    await retired.session.end().catch(() => undefined);
    await retired.writer.server.stop('immediate', 5_000);
  }

  async #removeAllBut(dbId: string, keep: string): Promise<void> {
    const dir = this.#dbDir(dbId);
    const log = this.o.logger.child({ db_id: dbId });
    for (const entry of await readdir(dir).catch(() => [] as string[])) {
      if (entry === keep || !DATA_NAME.test(entry)) continue;
      await stopStrayPostmaster(path.join(dir, entry), log, 'immediate');
      await rm(path.join(dir, entry), { recursive: true, force: true });
    }
    await rm(path.join(dir, `${CURRENT_FILE}.new`), { force: true });
  }

  async #dropHandoffSlot(dbId: string): Promise<void> {
    const writer = this.#writers.get(dbId);
    // A fenced writer refuses connections and is restarted after a rollback anyway: it stops first.
    if (writer?.stopping) await writer.server.stop('fast');
    if (!writer || !writer.server.running) {
      // A stopped writer's slots are directories it loads at start: removing one is dropping it.
      await rm(path.join(this.dataDir(dbId), 'pg_replslot', HANDOFF_SLOT), { recursive: true, force: true });
      return;
    }
    await asSuperuser(writer.endpoint, this.o.superuserPassword, async (client) => {
      // The walsender of a candidate just stopped may take a moment to let go of the slot.
      for (let attempt = 0; attempt < 50; attempt++) {
        const { rows } = await client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [HANDOFF_SLOT]);
        if (rows.length === 0) return;
        if (!rows[0]!.active) {
          await client.query('SELECT pg_drop_replication_slot($1)', [HANDOFF_SLOT]);
          return;
        }
        await client.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active', [HANDOFF_SLOT]);
        await sleep(20);
      }
      throw new Error(`replication slot ${HANDOFF_SLOT} stays in use`);
    });
  }

  #candidate(dbId: string): LocalCandidate {
    const c = this.#candidates.get(dbId);
    if (!c) throw new Error(`db ${dbId} has no candidate writer`);
    return c;
  }

  #endpointOf(server: PostgresServer): ComputeEndpoint {
    const endpoint: ComputeEndpoint = { host: server.options.host, port: server.options.port, workerId: `local/${os.hostname()}/${server.pid}` };
    const socketPath = server.unixSocketPath;
    if (socketPath !== null) endpoint.socketPath = socketPath;
    return endpoint;
  }

  /** A free port can be taken by someone else before Postgres binds it, and a killed writer's children can hold its shared memory for a moment: retry those. */
  async #startServer(
    settings: Record<string, string>,
    dataDir: string,
    log: Logger,
    o: { port?: number; readyLine?: string; startTimeoutMs?: number; onLine?: (line: string) => void } = {},
  ): Promise<PostgresServer> {
    for (let attempt = 1; ; attempt++) {
      const port = attempt === 1 && o.port !== undefined ? o.port : await freePort(this.o.host);
      try {
        return await PostgresServer.start({
          binDir: this.o.binDir,
          dataDir,
          host: this.o.host,
          port,
          owner: this.o.owner,
          startTimeoutMs: o.startTimeoutMs ?? this.o.startTimeoutMs,
          settings: { ...settings, ...WRITER_SETTINGS },
          readyLine: o.readyLine,
          onLog: (line) => {
            log.debug({ component: 'compute' }, line);
            o.onLine?.(line);
          },
        });
      } catch (err) {
        if (attempt >= START_ATTEMPTS || !TRANSIENT_START_FAILURE.test((err as Error).message)) throw err;
        log.warn({ attempt, err: (err as Error).message.split('\n')[0] }, 'compute start failed; retrying');
        await sleep(50 * attempt);
      }
    }
  }
}

function statusOf(dbId: string, w: LocalWriter | undefined): ComputeStatus {
  if (!w || !w.server.running) return { dbId, running: false, endpoint: null, pid: null, startedAt: null };
  return { dbId, running: true, endpoint: w.endpoint, pid: w.server.pid ?? null, startedAt: w.startedAt };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * Ends a postmaster that runs on `dataDir` but is not ours: one a previous pgwake
 * process left behind when it died. A lock file naming a process that is not
 * that postmaster is stale and goes.
 */
async function stopStrayPostmaster(dataDir: string, log: Logger, mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
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
  const steps = mode === 'fast' ? ([['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) : ([['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const);
  for (const [signal, waitMs] of steps) {
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
