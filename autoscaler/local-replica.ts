import { execFile } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { giveTo, INTERNAL_SUPERUSER, type ProcessOwner } from '../core/index.js';
import type { Lsn } from './lsn.js';
import { parseLsn } from './lsn.js';

const run = promisify(execFile);

/**
 * What a base backup leaves out (PostgreSQL docs, "Making a Base Backup Using the
 * Low Level API"): WAL and runtime state the server makes again, the lock file of
 * the running writer, and our socket directory. Directories among them are made
 * empty in the copy.
 */
const NOT_COPIED_DIRS = ['pg_wal', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans'];
const NOT_COPIED_FILES = ['postmaster.pid', 'postmaster.opts', 'socket', 'backup_label', 'tablespace_map', 'standby.signal', 'recovery.signal', 'promote'];

/** The physical slot that keeps the writer's WAL until its candidate has streamed it. One handoff per writer at a time. */
export const HANDOFF_SLOT = 'pgwake_handoff';

/**
 * Copies a running writer's data directory between `pg_backup_start` and
 * `pg_backup_stop`: pages torn by concurrent writes are repaired by WAL replay.
 * Files that vanish while copied (a dropped table, a temp file) are no error,
 * as the docs allow.
 */
export async function copyForBaseBackup(from: string, to: string, owner: ProcessOwner | undefined): Promise<void> {
  await mkdir(to, { mode: 0o700 });
  await giveTo(owner, to);
  const skip = new Set([...NOT_COPIED_DIRS, ...NOT_COPIED_FILES]);
  const entries = (await readdir(from)).filter((e) => !skip.has(e) && !e.startsWith('pgsql_tmp'));
  await run('cp', ['-a', ...entries.map((e) => path.join(from, e)), `${to}/`]).catch((err: Error & { stderr?: string }) => {
    const problems = (err.stderr ?? err.message).split('\n').filter((l) => l.trim() && !/No such file or directory/.test(l));
    if (problems.length > 0) throw new Error(`base backup copy failed: ${problems.join('; ')}`);
  });
  for (const dir of NOT_COPIED_DIRS) {
    const p = path.join(to, dir);
    await mkdir(p, { mode: 0o700, recursive: true });
    await giveTo(owner, p);
  }
}

async function writeOwned(file: string, content: string, owner: ProcessOwner | undefined): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  await giveTo(owner, file);
}

export interface StandbySetup {
  /** `pg_backup_stop`'s label file: where replay starts. */
  labelFile: string;
  /** `pg_backup_stop`'s tablespace map (empty without tablespaces). */
  tablespaceMap: string;
  primaryHost: string;
  primaryPort: number;
  superuserPassword: string;
  applicationName: string;
}

/**
 * Makes a copied data directory start as a streaming standby of its writer,
 * logging in for replication as the internal superuser. The password goes into
 * `postgresql.auto.conf` (mode 0600, the compute's own user), never onto a
 * command line that `ps` shows; it is reset once the candidate is promoted.
 */
export async function makeStandby(dataDir: string, s: StandbySetup, owner: ProcessOwner | undefined): Promise<void> {
  await writeOwned(path.join(dataDir, 'backup_label'), s.labelFile, owner);
  if (s.tablespaceMap.trim()) await writeOwned(path.join(dataDir, 'tablespace_map'), s.tablespaceMap, owner);
  await writeOwned(path.join(dataDir, 'standby.signal'), '', owner);
  const conninfo = [
    `host=${s.primaryHost}`,
    `port=${s.primaryPort}`,
    `user=${INTERNAL_SUPERUSER}`,
    `password=${quoteConninfo(s.superuserPassword)}`,
    `application_name=${s.applicationName}`,
    'sslmode=disable',
  ].join(' ');
  await appendFile(path.join(dataDir, 'postgresql.auto.conf'), `primary_conninfo = ${quoteConf(conninfo)}\nprimary_slot_name = ${quoteConf(HANDOFF_SLOT)}\n`);
}

/** Takes the standby settings (and the credential in them) out of a stopped server's postgresql.auto.conf. */
export async function stripStandbySettings(dataDir: string): Promise<void> {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return;
  const kept = text.split('\n').filter((l) => !/^\s*primary_(conninfo|slot_name)\s*=/.test(l));
  if (kept.length !== text.split('\n').length) await writeFile(file, kept.join('\n'));
}

function quoteConninfo(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function quoteConf(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/** The replication lines of pg_hba.conf name the internal superuser only; every login is SCRAM. */
export const COMPUTE_HBA = `# pgwake: every login is SCRAM; replication (a handoff's candidate) only as the internal superuser.
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
host    replication     ${INTERNAL_SUPERUSER}    127.0.0.1/32            scram-sha-256
host    replication     ${INTERNAL_SUPERUSER}    ::1/128                 scram-sha-256
`;

export async function writeComputeHba(dataDir: string, owner: ProcessOwner | undefined): Promise<void> {
  await writeOwned(path.join(dataDir, 'pg_hba.conf'), COMPUTE_HBA, owner);
}

/**
 * The children of `pid` still alive (an exited one the parent has not reaped
 * yet runs nothing): /proc/<pid>/task/<pid>/children, or every process's parent
 * where the kernel does not offer that file.
 */
export async function liveChildren(pid: number): Promise<number[]> {
  let children: number[];
  try {
    children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    const all = (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);
    const stats = await Promise.all(all.map(async (p) => [p, await procStat(p)] as const));
    children = stats.filter(([, st]) => st?.ppid === pid).map(([p]) => p);
  }
  const states = await Promise.all(children.map(procStat));
  return children.filter((_, i) => states[i] !== null && states[i]!.state !== 'Z');
}

/** State and parent from /proc/<pid>/stat (the command name in parentheses may hold spaces); null once it is gone. */
async function procStat(pid: number): Promise<{ state: string; ppid: number } | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: state!, ppid: Number(ppid) };
}

/**
 * Where a promoted standby left its old timeline: the last line of its newest
 * `pg_wal/<timeline>.history` says the end of the WAL it replayed. Null before a promotion.
 */
export async function readTimelineSwitchpoint(dataDir: string): Promise<Lsn | null> {
  const wal = path.join(dataDir, 'pg_wal');
  const histories = (await readdir(wal)).filter((f) => /^[0-9A-F]{8}\.history$/.test(f)).sort();
  const newest = histories[histories.length - 1];
  if (!newest) return null;
  const lines = (await readFile(path.join(wal, newest), 'utf8')).split('\n').filter((l) => /^\d+\s/.test(l));
  const last = lines[lines.length - 1];
  return last ? parseLsn(last.split(/\s+/)[1]!) : null;
}
