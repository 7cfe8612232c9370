import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per process; every role registers its `pgwake_` metrics on it (DESIGN §6). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export { Registry };
