/**
 * Rounds in which every system compared runs once, the order rotating from round
 * to round (ABC, BCA, CAB): a noisy machine's drift, and any advantage of going
 * first or last, lands on all systems alike.
 */
export function roundOrder<T>(systems: readonly T[], round: number): T[] {
  const n = systems.length;
  if (n === 0) return [];
  const start = round % n;
  return [...systems.slice(start), ...systems.slice(0, start)];
}

/** Runs `measure` for each system in each round; results keyed by system name, in round order. */
export async function runAlternating<S extends { name: string }, R>(
  systems: readonly S[],
  rounds: number,
  measure: (system: S, round: number) => Promise<R>,
): Promise<Map<string, R[]>> {
  const results = new Map<string, R[]>(systems.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const system of roundOrder(systems, r)) results.get(system.name)!.push(await measure(system, r));
  }
  return results;
}
