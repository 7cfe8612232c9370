import { describe, expect, it } from 'vitest';
import { decideScale, type LoadSample, type ScalePolicyInput } from '../../autoscaler/index.js';

const NOW = 1_000_000;
const quiet: Omit<LoadSample, 'at'> = { cpuCores: 0.05, connections: 2, activeConnections: 0, checkoutsInFlight: 0, checkoutsWaiting: 0 };

/** One sample a second over the last `seconds`, each made by `make(i)`. */
function series(seconds: number, make: (i: number) => Partial<LoadSample> = () => ({})): LoadSample[] {
  return Array.from({ length: seconds }, (_, i) => ({ ...quiet, ...make(i), at: NOW - (seconds - 1 - i) * 1000 }));
}

function input(over: Partial<ScalePolicyInput>): ScalePolicyInput {
  return { now: NOW, current: 'L2', min: 'L1', max: 'L8', cooldownUntil: null, poolMode: 'transaction', poolSize: null, samples: [], upWindowMs: 10_000, downWindowMs: 60_000, ...over };
}

describe('scaling policy (a pure function of the load window)', () => {
  it('does nothing without autoscaling limits', () => {
    expect(decideScale(input({ min: null, max: null, samples: series(60, () => ({ cpuCores: 8 })) }))).toEqual({ kind: 'hold', reason: 'autoscaling_off' });
  });

  it('moves a db outside [min, max] into them at once, cooldown or not', () => {
    expect(decideScale(input({ current: 'L1', min: 'L2', max: 'L4' }))).toEqual({ kind: 'up', to: 'L2', reason: 'below_min_profile' });
    expect(decideScale(input({ current: 'L8', min: 'L1', max: 'L4', cooldownUntil: NOW + 60_000 }))).toEqual({ kind: 'down', to: 'L4', reason: 'above_max_profile' });
  });

  it('scales up fast: one step once most samples of the short window show pressure, each signal on its own', () => {
    const cases: [Partial<LoadSample>, string][] = [
      [{ cpuCores: 1.7 }, 'cpu'], // 85 % of L2's 2 cores
      [{ checkoutsWaiting: 3 }, 'checkouts_waiting'],
      [{ connections: 170 }, 'connections'], // 85 % of L2's max_connections (200)
      [{ checkoutsInFlight: 48 }, 'pool_saturation'], // L2's pool is 50
    ];
    for (const [load, reason] of cases) {
      expect(decideScale(input({ samples: [...series(60).slice(0, 53), ...series(7, () => load)] }))).toEqual({ kind: 'up', to: 'L4', reason });
    }
  });

  it('is not moved by a blip: a minority of pressured samples, or fewer than three, or pressure that has passed', () => {
    const blip = series(10, (i) => (i === 5 || i === 7 ? { cpuCores: 2 } : {}));
    expect(decideScale(input({ samples: blip })).kind).toBe('hold');
    expect(decideScale(input({ samples: series(2, () => ({ cpuCores: 2 })) })).kind).toBe('hold');
    const passed = series(10, (i) => (i < 9 ? { cpuCores: 2 } : {}));
    expect(decideScale(input({ samples: passed })).kind).toBe('hold');
  });

  it('never scales up past max_profile, and a cooldown does not hold a scale-up', () => {
    const hot = series(10, () => ({ cpuCores: 8, checkoutsWaiting: 5 }));
    expect(decideScale(input({ current: 'L4', max: 'L4', samples: hot }))).toEqual({ kind: 'hold', reason: 'at_max_profile' });
    expect(decideScale(input({ current: 'L8', max: 'L8', samples: hot }))).toEqual({ kind: 'hold', reason: 'at_max_profile' });
    expect(decideScale(input({ current: 'L2', cooldownUntil: NOW + 600_000, samples: hot }))).toMatchObject({ kind: 'up', to: 'L4' });
  });

  it('scales down slowly: only when every sample of the whole long window fits the smaller profile with room to spare', () => {
    expect(decideScale(input({ samples: series(60) }))).toEqual({ kind: 'down', to: 'L1', reason: 'quiet' });
    // One busy second in the window keeps the size.
    expect(decideScale(input({ samples: series(60, (i) => (i === 10 ? { cpuCores: 0.7 } : {})) }))).toEqual({ kind: 'hold', reason: 'load_fits' });
    // A window not yet covered (the db just started, or just moved) decides nothing.
    expect(decideScale(input({ samples: series(20) }))).toEqual({ kind: 'hold', reason: 'window_not_full' });
  });

  it('hysteresis: load between the quiet and the pressure thresholds neither scales up nor down', () => {
    // L2 has 2 cores: 1.0 core is under 80 % of L2 (1.6) and over 50 % of L1 (0.5).
    expect(decideScale(input({ samples: series(60, () => ({ cpuCores: 1.0 })) }))).toEqual({ kind: 'hold', reason: 'load_fits' });
    // The same load right after a scale-down to L1 is pressure there: it goes back up, not around in circles below.
    expect(decideScale(input({ current: 'L1', samples: series(10, () => ({ cpuCores: 1.0 })) }))).toMatchObject({ kind: 'up', to: 'L2' });
  });

  it('never scales down inside the cooldown, nor below min_profile', () => {
    expect(decideScale(input({ samples: series(60), cooldownUntil: NOW + 1 }))).toEqual({ kind: 'hold', reason: 'cooldown' });
    expect(decideScale(input({ samples: series(60), cooldownUntil: NOW }))).toMatchObject({ kind: 'down' });
    expect(decideScale(input({ min: 'L2', samples: series(60) }))).toEqual({ kind: 'hold', reason: 'at_limit' });
  });

  it('in session mode pool saturation is not a signal (each client holds its server connection)', () => {
    expect(decideScale(input({ poolMode: 'session', samples: series(10, () => ({ checkoutsInFlight: 60 })) })).kind).not.toBe('up');
  });
});
