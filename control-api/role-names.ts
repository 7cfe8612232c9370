import { INTERNAL_SUPERUSER } from '../core/index.js';

/**
 * Names of db roles: Postgres's rules for an identifier that needs no quoting,
 * lowercase, so a name reads the same in SQL, URLs and connection strings. No
 * dots or `@`: drivers and URLs give those other meanings.
 */
const ROLE_NAME = /^[a-z_][a-z0-9_$]*$/;

/** Names Postgres refuses for a role, or that mean something else in GRANT and SET ROLE. */
const POSTGRES_RESERVED = new Set(['public', 'none', 'current_user', 'session_user', 'current_role', 'postgres']);

/**
 * Why `name` cannot be a role of a db of the tenant whose login is `tenantLogin`,
 * or null when it can. Reserved: Postgres's own (`postgres`, `pg_*`, `public`, …),
 * pgwake's (`pgwake_admin`, `pgwake_*`) and the tenant's login, which exists on
 * every compute of the tenant already.
 */
export function roleNameProblem(name: string, tenantLogin: string): string | null {
  if (name.length < 1 || Buffer.byteLength(name) > 63) return 'must be 1 to 63 characters long';
  if (!ROLE_NAME.test(name)) return 'must start with a lowercase letter or underscore and contain only lowercase letters, digits, underscores and $';
  if (name.startsWith('pg_')) return 'must not start with pg_ (reserved for Postgres)';
  if (name === INTERNAL_SUPERUSER || name.startsWith('pgwake_')) return 'must not start with pgwake_ (reserved for pgwake)';
  if (POSTGRES_RESERVED.has(name)) return `"${name}" is reserved by Postgres`;
  if (name === tenantLogin) return "is the tenant's own login (pg_user)";
  return null;
}
