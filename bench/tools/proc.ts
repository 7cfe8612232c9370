import { readFile } from 'node:fs/promises';

/** Resident set size of a process, from /proc/<pid>/status (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** A process's open-files limits (soft, hard), from /proc/<pid>/limits. */
export async function openFilesLimit(pid: number | 'self'): Promise<{ soft: number; hard: number }> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits);
  const n = (v: string | undefined) => (v === undefined || v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/** CPU time a process has used, user and system, in ms, from /proc/<pid>/stat (Linux; clock ticks of 10 ms). */
export async function cpuTimeMs(pid: number): Promise<{ user: number; system: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}
