import pg from 'pg';
import { createScramVerifier, formatScramVerifier, INTERNAL_SUPERUSER } from '../core/index.js';
import type { ComputeEndpoint } from './compute-driver.js';

export interface TenantDatabase {
  /** `dbs.name` */
  name: string;
  /** `tenants.pg_user`: the login the gateway uses on the compute. */
  owner: string;
  /** `secrets.internalRolePassword(owner)`: only its SCRAM verifier reaches the compute. */
  ownerPassword: string;
}

/**
 * What a new compute holds for its tenant (see PREAMBLE conventions): the tenant's
 * login role with a SCRAM verifier of its internal password, and one database it
 * owns. Safe to run again on a compute that has either already.
 */
export async function createTenantDatabase(endpoint: ComputeEndpoint, superuserPassword: string, want: TenantDatabase): Promise<void> {
  const client = new pg.Client({ host: endpoint.host, port: endpoint.port, user: INTERNAL_SUPERUSER, password: superuserPassword, database: 'postgres', application_name: 'pgwake-autoscaler' });
  await client.connect();
  try {
    const role = pg.escapeIdentifier(want.owner);
    // A verifier, never the password, goes over the wire and into the server's log if it logs statements.
    const verifier = pg.escapeLiteral(formatScramVerifier(createScramVerifier(want.ownerPassword)));
    const roleExists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [want.owner])).rowCount! > 0;
    await client.query(`${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN PASSWORD ${verifier}`);
    const dbExists = (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [want.name])).rowCount! > 0;
    if (!dbExists) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(want.name)} OWNER ${role}`);
  } finally {
    await client.end();
  }
}
