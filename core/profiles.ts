/**
 * A profile is a named compute size. Its CPU and memory share decide the Postgres
 * settings that follow from them; `size` on a db picks the profile it starts at.
 */
export interface Profile {
  name: ProfileName;
  /** Fraction of a core the writer is meant to get (a scheduling weight on the local driver). */
  cpu: number;
  memoryMb: number;
  /** Server connections per db the gateway keeps in transaction mode unless the db sets `pool_size`. */
  defaultPoolSize: number;
  postgresSettings: Record<string, string>;
}

export const PROFILE_NAMES = ['L1', 'L2', 'L4', 'L8'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

function profile(name: ProfileName, cpu: number, memoryMb: number, maxConnections: number): Profile {
  return {
    name,
    cpu,
    memoryMb,
    defaultPoolSize: Math.max(5, Math.floor(maxConnections / 4)),
    postgresSettings: {
      max_connections: String(maxConnections),
      shared_buffers: `${Math.floor(memoryMb / 4)}MB`,
      effective_cache_size: `${Math.floor((memoryMb * 3) / 4)}MB`,
      work_mem: `${Math.max(4, Math.floor(memoryMb / 64))}MB`,
      maintenance_work_mem: `${Math.max(16, Math.floor(memoryMb / 16))}MB`,
      max_worker_processes: String(Math.max(2, cpu * 2)),
      max_parallel_workers: String(Math.max(1, cpu)),
    },
  };
}

export const PROFILES: Record<ProfileName, Profile> = {
  // Even the smallest profile takes 100 sessions: session-mode clients each hold one,
  // and 50 app instances connecting to an L1 is an ordinary day.
  L1: profile('L1', 1, 256, 100),
  L2: profile('L2', 2, 512, 200),
  L4: profile('L4', 4, 1024, 400),
  L8: profile('L8', 8, 2048, 800),
};

export function isProfileName(name: string): name is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(name);
}
