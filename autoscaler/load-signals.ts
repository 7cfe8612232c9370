import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { INTERNAL_SUPERUSER, type DbActivity } from '../core/index.js';
import type { ComputeStatus } from './compute-driver.js';
import { connectAsSuperuser } from './compute-sql.js';
import type { LoadSample } from './scale-policy.js';

/** USER_HZ: the unit of CPU times in /proc, 100 on every Linux we run on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** utime, stime, cutime, cstime of one process from /proc/<pid>/stat; null when it is gone. */
async function cpuTicksOf(pid: number): Promise<{ own: number; reaped: number } | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/**
 * CPU time used so far by a postmaster and every backend it forked, in clock
 * ticks: its own time, its live children's, and (cutime/cstime) that of the
 * children it already reaped, so a backend that came and went still counts.
 */
export async function processTreeCpuTicks(pid: number): Promise<number | null> {
  const root = await cpuTicksOf(pid);
  if (!root) return null;
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  let total = root.own + root.reaped;
  for (const child of children) total += (await cpuTicksOf(child))?.own ?? 0;
  return total;
}

interface CpuMark {
  pid: number;
  ticks: number;
  at: number;
}

/**
 * Samples the load signals of running writers for the scaling policy: CPU from
 * /proc, sessions from the writer's pg_stat_activity (one superuser connection
 * kept per writer), checkouts from the gateways' activity reports.
 */
export class LoadSampler {
  #cpu = new Map<string, CpuMark>();
  #sessions = new Map<string, { port: number; client: Promise<pg.Client> }>();

  constructor(private readonly superuserPassword: string) {}

  /** A sample, or null on the first look at a writer (CPU is a rate: it needs two). */
  async sample(dbId: string, writer: ComputeStatus, activity: DbActivity | undefined, now = Date.now()): Promise<LoadSample | null> {
    if (!writer.running || writer.pid === null || writer.endpoint === null) {
      this.forget(dbId);
      return null;
    }
    const ticks = await processTreeCpuTicks(writer.pid);
    if (ticks === null) return null;
    const last = this.#cpu.get(dbId);
    this.#cpu.set(dbId, { pid: writer.pid, ticks, at: now });
    if (!last || last.pid !== writer.pid || now <= last.at) return null;
    const cpuCores = (ticks - last.ticks) / CLOCK_TICKS_PER_SECOND / ((now - last.at) / 1000);
    const { connections, active } = await this.#sessionCounts(dbId, writer);
    return {
      at: now,
      cpuCores: Math.max(0, cpuCores),
      connections,
      activeConnections: active,
      checkoutsInFlight: activity?.checkoutsInFlight ?? 0,
      checkoutsWaiting: activity?.checkoutsWaiting ?? 0,
    };
  }

  async #sessionCounts(dbId: string, writer: ComputeStatus): Promise<{ connections: number; active: number }> {
    let s = this.#sessions.get(dbId);
    if (!s || s.port !== writer.endpoint!.port) {
      this.forget(dbId);
      const client = connectAsSuperuser(writer.endpoint!, this.superuserPassword);
      client.catch(() => undefined);
      s = { port: writer.endpoint!.port, client };
      this.#sessions.set(dbId, s);
    }
    try {
      const { rows } = await (await s.client).query<{ total: number; active: number }>(
        `SELECT count(*)::int AS total, count(*) FILTER (WHERE state <> 'idle')::int AS active
           FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename <> $1`,
        [INTERNAL_SUPERUSER],
      );
      return { connections: rows[0]!.total, active: rows[0]!.active };
    } catch (err) {
      this.forget(dbId); // the writer went away (suspend, handoff): the next sample connects again
      throw err;
    }
  }

  /** Drops what is kept for a writer that stopped or moved. */
  forget(dbId: string): void {
    this.#cpu.delete(dbId);
    const s = this.#sessions.get(dbId);
    this.#sessions.delete(dbId);
    void s?.client.then((c) => c.end()).catch(() => undefined);
  }

  close(): void {
    for (const id of [...this.#sessions.keys()]) this.forget(id);
    this.#cpu.clear();
  }
}
