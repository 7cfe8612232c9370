import pg from 'pg';
import { INTERNAL_SUPERUSER } from '../core/index.js';
import type { ComputeEndpoint } from './compute-driver.js';

/** A connection to a compute as the internal superuser: what the autoscaler alone holds. */
export async function connectAsSuperuser(endpoint: Pick<ComputeEndpoint, 'host' | 'port'>, superuserPassword: string, database = 'postgres'): Promise<pg.Client> {
  const client = new pg.Client({ host: endpoint.host, port: endpoint.port, user: INTERNAL_SUPERUSER, password: superuserPassword, database, application_name: 'pgwake-autoscaler', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a server that goes away (a fenced writer) fails the next query, not the process
  await client.connect();
  return client;
}

export async function asSuperuser<T>(endpoint: Pick<ComputeEndpoint, 'host' | 'port'>, superuserPassword: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectAsSuperuser(endpoint, superuserPassword);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
