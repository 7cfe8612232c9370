import { PROFILE_NAMES, PROFILES, type PoolMode, type ProfileName } from '../core/index.js';

/** One look at a running db's load. */
export interface LoadSample {
  /** ms since epoch */
  at: number;
  /** CPU the writer used since the last sample (postmaster and every child), in cores. */
  cpuCores: number;
  /** Client sessions on the writer (the gateway's server connections). */
  connections: number;
  /** Of them, running a statement or in a transaction. */
  activeConnections: number;
  /** Checkouts in flight over every gateway. */
  checkoutsInFlight: number;
  /** Checkouts waiting for a server connection over every gateway. */
  checkoutsWaiting: number;
}

export interface ScalePolicyInput {
  now: number;
  current: ProfileName;
  min: ProfileName | null;
  max: ProfileName | null;
  /** The policy scales nothing down before this (ms since epoch); null: no cooldown. */
  cooldownUntil: number | null;
  poolMode: PoolMode;
  /** `dbs.pool_size`; null: the profile's default. */
  poolSize: number | null;
  /** Oldest first. */
  samples: readonly LoadSample[];
  upWindowMs: number;
  downWindowMs: number;
}

export type ScaleDecision = { kind: 'hold'; reason: string } | { kind: 'up' | 'down'; to: ProfileName; reason: string };

/**
 * Thresholds, as shares of a profile's capacity. Pressure is ≥ 80 % of the
 * current profile; quiet is ≤ 50 % of the next smaller one (so ≤ 25 % of the
 * current for CPU): the gap between them is the hysteresis that keeps a db from
 * flapping between two sizes.
 */
export const PRESSURE = { cpu: 0.8, connections: 0.8, poolSaturation: 0.9 };
export const QUIET = { cpu: 0.5, connections: 0.5, poolSaturation: 0.5 };
/** Share of the up window's samples that must show pressure. */
export const UP_QUORUM = 0.6;
/** Fewest samples a decision stands on. */
export const MIN_SAMPLES = 3;

const rank = (p: ProfileName) => PROFILE_NAMES.indexOf(p);
const step = (p: ProfileName, by: 1 | -1): ProfileName | null => PROFILE_NAMES[rank(p) + by] ?? null;

function maxConnections(p: ProfileName): number {
  return Number(PROFILES[p].postgresSettings.max_connections);
}

function poolCapacity(p: ProfileName, poolSize: number | null): number {
  return poolSize ?? PROFILES[p].defaultPoolSize;
}

/** What in `s` says the db needs more than `p` gives it; null when nothing does. */
export function pressureOf(s: LoadSample, p: ProfileName, poolMode: PoolMode, poolSize: number | null): string | null {
  if (s.checkoutsWaiting > 0) return 'checkouts_waiting';
  if (s.cpuCores >= PRESSURE.cpu * PROFILES[p].cpu) return 'cpu';
  if (s.connections >= PRESSURE.connections * maxConnections(p)) return 'connections';
  if (poolMode === 'transaction' && s.checkoutsInFlight >= PRESSURE.poolSaturation * poolCapacity(p, poolSize)) return 'pool_saturation';
  return null;
}

/** `s` would leave the smaller profile `p` at most half used. */
export function fitsQuietly(s: LoadSample, p: ProfileName, poolMode: PoolMode, poolSize: number | null): boolean {
  return (
    s.checkoutsWaiting === 0 &&
    s.cpuCores <= QUIET.cpu * PROFILES[p].cpu &&
    s.connections <= QUIET.connections * maxConnections(p) &&
    (poolMode !== 'transaction' || s.checkoutsInFlight <= QUIET.poolSaturation * poolCapacity(p, poolSize))
  );
}

/**
 * The scaling policy: a pure function of the load over a window. Limits first
 * (a db outside [min, max] moves into them at once). Up fast: one step as soon
 * as most samples of the short up window show pressure, never held by a
 * cooldown. Down slowly: one step only once the cooldown passed and every sample
 * of the long down window would fit the smaller profile with room to spare.
 * No limits set: autoscaling is off for the db.
 */
export function decideScale(i: ScalePolicyInput): ScaleDecision {
  if (i.min === null || i.max === null) return { kind: 'hold', reason: 'autoscaling_off' };
  if (rank(i.current) < rank(i.min)) return { kind: 'up', to: i.min, reason: 'below_min_profile' };
  if (rank(i.current) > rank(i.max)) return { kind: 'down', to: i.max, reason: 'above_max_profile' };

  const upSamples = i.samples.filter((s) => s.at > i.now - i.upWindowMs);
  if (upSamples.length >= MIN_SAMPLES) {
    const pressures = upSamples.map((s) => pressureOf(s, i.current, i.poolMode, i.poolSize)).filter((p): p is string => p !== null);
    if (pressures.length >= UP_QUORUM * upSamples.length && pressureOf(upSamples[upSamples.length - 1]!, i.current, i.poolMode, i.poolSize) !== null) {
      const up = step(i.current, 1);
      if (!up || rank(up) > rank(i.max)) return { kind: 'hold', reason: 'at_max_profile' };
      return { kind: 'up', to: up, reason: mostCommon(pressures) };
    }
  }

  const down = step(i.current, -1);
  if (!down || rank(down) < rank(i.min)) return { kind: 'hold', reason: 'at_limit' };
  if (i.cooldownUntil !== null && i.now < i.cooldownUntil) return { kind: 'hold', reason: 'cooldown' };
  const downSamples = i.samples.filter((s) => s.at > i.now - i.downWindowMs);
  // The window must be covered: the oldest sample no later than a fifth of the window in.
  const covered = downSamples.length >= MIN_SAMPLES && downSamples[0]!.at <= i.now - i.downWindowMs * 0.8;
  if (!covered) return { kind: 'hold', reason: 'window_not_full' };
  if (downSamples.every((s) => fitsQuietly(s, down, i.poolMode, i.poolSize))) return { kind: 'down', to: down, reason: 'quiet' };
  return { kind: 'hold', reason: 'load_fits' };
}

function mostCommon(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}
