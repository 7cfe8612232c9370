import { createScramVerifier, formatScramVerifier, randomId, randomSecret, type Config, type SecretBox, type TenantRecord } from '../core/index.js';

/** What a tenant's users connect with: `POST /v2/tenants` and `GET …/credentials` both answer with it. */
export interface TenantCredentials {
  pg_user: string;
  pg_password: string;
  dsn_template: string;
}

const SUFFIX_LENGTH = 6;

/**
 * A Postgres login name for a tenant, unique across the deployment: the tenant's
 * name with `_` for `-` and a random suffix. It is a plain identifier (no quoting
 * needed), within Postgres's 63 bytes, and never in the reserved `pg_` space.
 */
export function newPgUser(tenantName: string): string {
  // The random suffix keeps it unique and never equal to a reserved name (public, none, pgwake_admin).
  const user = `${tenantName.replace(/-/g, '_').slice(0, 63 - SUFFIX_LENGTH - 3)}_${randomId('x', SUFFIX_LENGTH).slice(2)}`;
  return /^(pg_|[0-9])/.test(user) ? `t_${user}` : user;
}

/** A new random password, sealed for `…/credentials` and as the SCRAM verifier the gateway checks. */
export function newTenantPassword(secrets: SecretBox): { password: string; sealed: string; verifier: string } {
  const password = randomSecret();
  return { password, sealed: secrets.seal(password), verifier: formatScramVerifier(createScramVerifier(password)) };
}

export function tenantCredentials(config: Config, secrets: SecretBox, tenant: TenantRecord, password = secrets.open(tenant.password_sealed)): TenantCredentials {
  return {
    pg_user: tenant.pg_user,
    pg_password: password,
    dsn_template: `postgres://${tenant.pg_user}:${encodeURIComponent(password)}@${config.gatewayHost}:${config.gatewayPort}/<db-name>?sslmode=require`,
  };
}
