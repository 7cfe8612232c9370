import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Where the processes of a run may execute. On a machine of few cores, a proxy
 * that shares them with pgbench and Postgres takes its CPU from them, so its
 * TPS reflects its CPU per transaction more than anything else. Poolers are
 * deployed on cores (or hosts) of their own; `proxyOwnCore` lays a run out that
 * way: the load generator and the compute on the first CPU, the proxy on the
 * rest. `shared` leaves the scheduler free.
 */
export interface CpuLayout {
  name: string;
  /** CPUs for pgbench and the compute (a taskset list), or undefined: any. */
  loadCpus?: string;
  /** CPUs for the proxy under test, or undefined: any. */
  proxyCpus?: string;
}

export const SHARED_CPUS: CpuLayout = { name: 'all share the CPUs' };

/** The proxy on its own core(s); undefined (with the reason) where that cannot be laid out here. */
export async function proxyOwnCore(): Promise<{ layout?: CpuLayout; reason?: string }> {
  const cpus = availableParallelism();
  if (cpus < 2) return { reason: `this machine has ${cpus} CPU: no core is left for the proxy alone` };
  try {
    await run('taskset', ['-p', String(process.pid)]);
  } catch (err) {
    return { reason: `taskset is not usable (${(err as Error).message.split('\n')[0]}); it comes with util-linux` };
  }
  const proxyCpus = cpus === 2 ? '1' : `1-${cpus - 1}`;
  return { layout: { name: `proxy on CPU ${proxyCpus}, pgbench and the compute on CPU 0`, loadCpus: '0', proxyCpus } };
}

/** Every CPU of the machine, as a taskset list: what `pin` undoes to. */
export function allCpus(): string {
  const n = availableParallelism();
  return n === 1 ? '0' : `0-${n - 1}`;
}

/** Confines `pid` and all its threads to `cpus`. */
export async function pin(pid: number, cpus: string): Promise<void> {
  await run('taskset', ['-a', '-p', '-c', cpus, String(pid)]);
}

/**
 * Confines `pid` and its children of now (a postmaster's backends and helpers)
 * to `cpus`; children forked later inherit it from `pid`.
 */
export async function pinWithChildren(pid: number, cpus: string): Promise<void> {
  await pin(pid, cpus);
  for (const child of await childrenOf(pid)) {
    // A backend may exit between the listing and the call.
    await pin(child, cpus).catch(() => undefined);
  }
}

/** The CPUs `pid` may run on, as the kernel lists them ("0", "1-3"). */
export async function allowedCpus(pid: number): Promise<string> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return /Cpus_allowed_list:\s+(\S+)/.exec(status)?.[1] ?? '';
}

/** The parent of a process, from /proc/<pid>/stat. */
export async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The children of a process now, from /proc. */
export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    if (await parentOf(child).then((p) => p === pid, () => false)) out.push(child);
  }
  return out;
}
