import { readdir, readFile } from 'node:fs/promises';

/**
 * Pids of processes whose command line mentions `needle` (a db id: a compute's
 * postmaster runs with `-D …/<db-id>/data`). Read from /proc: what really runs.
 */
export async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}
