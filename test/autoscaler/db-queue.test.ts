import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DbQueue } from '../../autoscaler/db-queue.js';

describe('DbQueue: one action at a time per db', () => {
  it('runs actions on one db in order, never overlapping, and other dbs alongside', async () => {
    const q = new DbQueue();
    const log: string[] = [];
    let inside = 0;
    const action = (name: string, ms: number) => async () => {
      inside++;
      expect(inside).toBe(1);
      log.push(`${name}:start`);
      await sleep(ms);
      log.push(`${name}:end`);
      inside--;
      return name;
    };
    const other = q.run('db-b', 'wake', async () => {
      log.push('b');
      return 'b';
    });
    const results = await Promise.all([q.run('db-a', 'suspend', action('suspend', 30)), q.run('db-a', 'wake', action('wake', 5)), other]);
    expect(results).toEqual(['suspend', 'wake', 'b']);
    expect(log.filter((l) => l !== 'b')).toEqual(['suspend:start', 'suspend:end', 'wake:start', 'wake:end']);
    expect(log.indexOf('b')).toBeLessThan(log.indexOf('suspend:end'));
    expect(q.busy('db-a')).toBe(false);
  });

  it('joins an action identical to the last one queued, but not one with something else queued after it', async () => {
    const q = new DbQueue();
    let wakes = 0;
    const wake = async () => {
      wakes++;
      await sleep(10);
    };
    await Promise.all([q.run('db', 'wake', wake), q.run('db', 'wake', wake), q.run('db', 'wake', wake)]);
    expect(wakes).toBe(1);
    await Promise.all([q.run('db', 'wake', wake), q.run('db', 'suspend', async () => undefined), q.run('db', 'wake', wake)]);
    expect(wakes).toBe(3);
  });

  it('a failed action fails its callers only; the next one still runs', async () => {
    const q = new DbQueue();
    const failed = q.run('db', 'wake', async () => {
      throw new Error('no start');
    });
    const next = q.run('db', 'suspend', async () => 'ran');
    await expect(failed).rejects.toThrow('no start');
    await expect(next).resolves.toBe('ran');
    await q.drain();
    expect(q.busy('db')).toBe(false);
  });
});
