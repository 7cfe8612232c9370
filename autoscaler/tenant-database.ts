import pg from 'pg';
import { createScramVerifier, formatScramVerifier } from '../core/index.js';
import type { ComputeEndpoint } from './compute-driver.js';
import { asSuperuser } from './compute-sql.js';

/**
 * A database made once in the template and renamed into the tenant's on each new
 * compute: a rename and an owner change touch only the catalog, where CREATE
 * DATABASE copies template1 through the WAL and fsyncs it (about 250 ms saved
 * per provision here). The underscore keeps it clear of resource names, which
 * allow only lowercase letters, digits and hyphens.
 */
export const TEMPLATE_DATABASE = 'pgwake_tenant';

export interface TenantDatabase {
  /** `dbs.name` */
  name: string;
  /** `tenants.pg_user`: the login the gateway uses on the compute. */
  owner: string;
  /** `secrets.internalRolePassword(owner)`: only its SCRAM verifier reaches the compute. */
  ownerPassword: string;
}

/** Run once on the template cluster. */
export function prepareTemplateDatabase(endpoint: ComputeEndpoint, superuserPassword: string): Promise<void> {
  return asSuperuser(endpoint, superuserPassword, async (client) => {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(TEMPLATE_DATABASE)}`);
  });
}

/**
 * What a new compute holds for its tenant (see PREAMBLE conventions): the tenant's
 * login role with a SCRAM verifier of its internal password, and one database it
 * owns. Safe to run again on a compute that has either already.
 */
export function createTenantDatabase(endpoint: ComputeEndpoint, superuserPassword: string, want: TenantDatabase): Promise<void> {
  if (want.name === 'template0') return Promise.reject(new Error('"template0" cannot hold a tenant database: it accepts no connections'));
  return asSuperuser(endpoint, superuserPassword, async (client) => {
    const role = pg.escapeIdentifier(want.owner);
    const name = pg.escapeIdentifier(want.name);
    // A verifier, never the password, goes over the wire and into the server's log if it logs statements.
    const verifier = pg.escapeLiteral(formatScramVerifier(createScramVerifier(want.ownerPassword)));
    const roleExists = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [want.owner])).rowCount! > 0;
    await client.query(`${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN PASSWORD ${verifier}`);
    const existing = new Set((await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[want.name, TEMPLATE_DATABASE]])).rows.map((r) => r.datname));
    if (existing.has(want.name)) {
      // A re-run, or a name the cluster comes with (`postgres`): the tenant owns it as it is.
      await client.query(`ALTER DATABASE ${name} OWNER TO ${role}`);
      if (existing.has(TEMPLATE_DATABASE)) await client.query(`DROP DATABASE ${pg.escapeIdentifier(TEMPLATE_DATABASE)}`);
    } else if (existing.has(TEMPLATE_DATABASE)) {
      await client.query(`ALTER DATABASE ${pg.escapeIdentifier(TEMPLATE_DATABASE)} RENAME TO ${name}`);
      await client.query(`ALTER DATABASE ${name} OWNER TO ${role}`);
    } else {
      await client.query(`CREATE DATABASE ${name} OWNER ${role}`); // a template made before TEMPLATE_DATABASE existed
    }
  });
}
