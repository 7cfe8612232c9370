import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { freePort, initDataDir, INTERNAL_SUPERUSER, PostgresServer, type ProcessOwner } from '../core/index.js';
import type { ComputeBootstrap } from './compute-driver.js';
import { asSuperuser } from './compute-sql.js';

export interface ComputeTemplateOptions {
  /** `<dataDir>/computes` */
  computesDir: string;
  binDir: string;
  owner: ProcessOwner | undefined;
  superuserPassword: string;
  startTimeoutMs: number;
  /** Run once on the new cluster, started just for it: what every db should find already made. */
  prepare: ComputeBootstrap;
  onCreated?: (timings: { initdbMs: number; prepareMs: number }) => void;
}

/**
 * A promotion (a handoff's cutover) copies the WAL segment it switches timeline
 * in, written out in full and fsynced: 16 MB (the default) took ~18 ms of a
 * ~25 ms promote, 1 MB takes ~2 ms. At the WAL rates of one db's writer, a
 * segment switch a second or two costs nothing that shows.
 */
const WAL_SEGMENT_MB = 1;
/**
 * WAL segments made ahead in the template (recycled ones, named for later
 * positions), so every db starts with this much WAL room allocated, as it did
 * with one 16 MB segment and more: a disk that fills then fails a data file's
 * extension (an error the session survives) before WAL needs a new segment
 * (which a server cannot survive).
 */
const PREALLOCATED_WAL_SEGMENTS = 32;

/**
 * One initdb'd cluster (superuser INTERNAL_SUPERUSER, SCRAM only) that every new
 * db's data directory is copied from: a copy is several times faster than initdb.
 * Made once per data dir, in a side directory renamed into place, so a crash
 * mid-way never leaves a half template behind.
 */
export class ComputeTemplate {
  readonly dir: string;
  #ready: Promise<string> | undefined;

  constructor(private readonly o: ComputeTemplateOptions) {
    this.dir = path.join(o.computesDir, 'template');
  }

  /** The template's data directory, created on first call. A failed creation is retried on the next call. */
  ensure(): Promise<string> {
    this.#ready ??= this.#create().catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async #create(): Promise<string> {
    if (existsSync(path.join(this.dir, 'PG_VERSION'))) return this.dir;
    const building = `${this.dir}.building`;
    await rm(building, { recursive: true, force: true });
    const t0 = performance.now();
    await initDataDir({ binDir: this.o.binDir, dataDir: building, owner: this.o.owner, superuser: INTERNAL_SUPERUSER, superuserPassword: this.o.superuserPassword, walSegmentSizeMb: WAL_SEGMENT_MB });
    const t1 = performance.now();
    const server = await PostgresServer.start({ binDir: this.o.binDir, dataDir: building, host: '127.0.0.1', port: await freePort(), owner: this.o.owner, startTimeoutMs: this.o.startTimeoutMs });
    try {
      await this.o.prepare({ host: server.options.host, port: server.options.port, workerId: 'template' });
      await asSuperuser(server.options, this.o.superuserPassword, async (client) => {
        // Each switch (after a commit, so there is WAL to end) fills a new segment; the checkpoint then
        // recycles the ended ones into future names, up to min_wal_size.
        for (let i = 0; i < PREALLOCATED_WAL_SEGMENTS; i++) {
          await client.query('SELECT pg_current_xact_id()');
          await client.query('SELECT pg_switch_wal()');
        }
        await client.query('CHECKPOINT');
      });
    } finally {
      await server.stop('fast');
    }
    await rm(path.join(building, 'socket'), { recursive: true, force: true });
    await rm(this.dir, { recursive: true, force: true }); // a directory without PG_VERSION is not a template
    await rename(building, this.dir);
    this.o.onCreated?.({ initdbMs: t1 - t0, prepareMs: performance.now() - t1 });
    return this.dir;
  }
}
