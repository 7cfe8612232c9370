import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { giveTo, type ProcessOwner } from './os-user.js';

const run = promisify(execFile);

export interface InitDbOptions {
  binDir: string;
  dataDir: string;
  owner: ProcessOwner | undefined;
  superuser: string;
  superuserPassword: string;
  /** WAL segment size in MB (initdb --wal-segsize, a power of 2 from 1 to 1024); default 16. */
  walSegmentSizeMb?: number;
}

/**
 * A new cluster whose superuser logs in only with its SCRAM password, over TCP and
 * the socket alike: nobody without the credential gets in.
 */
export async function initDataDir(o: InitDbOptions): Promise<void> {
  const parent = path.dirname(o.dataDir);
  await mkdir(parent, { recursive: true });
  await giveTo(o.owner, parent);
  const pwfile = path.join(parent, `.pwfile-${process.pid}-${Date.now()}`);
  await writeFile(pwfile, o.superuserPassword, { mode: 0o600 });
  await giveTo(o.owner, pwfile);
  try {
    await run(
      path.join(o.binDir, 'initdb'),
      ['-D', o.dataDir, '-U', o.superuser, `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions', ...(o.walSegmentSizeMb ? [`--wal-segsize=${o.walSegmentSizeMb}`] : [])],
      { uid: o.owner?.uid, gid: o.owner?.gid, env: { ...process.env, LC_ALL: 'C' } },
    ).catch((err: Error & { stderr?: string }) => {
      throw new Error(`initdb failed for ${o.dataDir}: ${err.stderr?.trim() || err.message}`);
    });
  } finally {
    await rm(pwfile, { force: true });
  }
}

/** Copies a data directory with owner and modes kept (`cp -a`): faster than initdb for each new db. */
export async function copyDataDir(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  await run('cp', ['-a', from, to]);
}
