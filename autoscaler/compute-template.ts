import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { initDataDir, INTERNAL_SUPERUSER, type ProcessOwner } from '../core/index.js';

export interface ComputeTemplateOptions {
  /** `<dataDir>/computes` */
  computesDir: string;
  binDir: string;
  owner: ProcessOwner | undefined;
  superuserPassword: string;
  onCreated?: (ms: number) => void;
}

/**
 * One initdb'd cluster (superuser INTERNAL_SUPERUSER, SCRAM only) that every new
 * db's data directory is copied from: a copy is several times faster than initdb.
 * Made once per data dir, in a side directory renamed into place, so a crash
 * mid-initdb never leaves a half template behind.
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
    await initDataDir({ binDir: this.o.binDir, dataDir: building, owner: this.o.owner, superuser: INTERNAL_SUPERUSER, superuserPassword: this.o.superuserPassword });
    await rm(this.dir, { recursive: true, force: true }); // a directory without PG_VERSION is not a template
    await rename(building, this.dir);
    this.o.onCreated?.(performance.now() - t0);
    return this.dir;
  }
}
