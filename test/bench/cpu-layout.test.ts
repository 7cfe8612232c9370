import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { allCpus, allowedCpus, childrenOf, pin, pinWithChildren, proxyOwnCore } from '../../bench/tools/cpu-layout.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) c.kill('SIGKILL');
});

/** A shell with two sleeping children now, and a third forked when it is sent SIGUSR1. */
function family(): ChildProcess {
  const sh = spawn('/bin/sh', ['-c', 'trap "sleep 60 & echo forked" USR1; sleep 60 & sleep 60 & echo ready; while :; do wait; done'], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(sh);
  return sh;
}

const line = (child: ChildProcess, text: string) =>
  new Promise<void>((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes(text)) resolve();
    });
  });

describe('cpu layout of a benchmark run', () => {
  it('confines a process with its children of now and later to a CPU, and frees them again', async () => {
    const sh = family();
    await line(sh, 'ready');
    const pid = sh.pid!;
    const last = String(availableParallelism() - 1);
    await pinWithChildren(pid, last);
    const before = await childrenOf(pid);
    expect(before.length).toBeGreaterThanOrEqual(2);
    for (const p of [pid, ...before]) expect(await allowedCpus(p)).toBe(last);
    sh.kill('SIGUSR1');
    await line(sh, 'forked');
    const later = (await childrenOf(pid)).filter((p) => !before.includes(p));
    expect(later.length).toBe(1);
    expect(await allowedCpus(later[0]!)).toBe(last);
    await pinWithChildren(pid, allCpus());
    for (const p of await childrenOf(pid)) expect(await allowedCpus(p)).toBe(allCpus());
    await pin(pid, allCpus());
    expect(await allowedCpus(pid)).toBe(allCpus());
  });

  it('puts the proxy on the cores pgbench and the compute leave, or says why it cannot', async () => {
    const { layout, reason } = await proxyOwnCore();
    if (availableParallelism() < 2) {
      expect(layout).toBeUndefined();
      expect(reason).toMatch(/1 CPU/);
      return;
    }
    expect(reason).toBeUndefined();
    expect(layout!.loadCpus).toBe('0');
    expect(layout!.proxyCpus).toBe(availableParallelism() === 2 ? '1' : `1-${availableParallelism() - 1}`);
  });
});
