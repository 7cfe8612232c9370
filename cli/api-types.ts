import type { PublicDb } from '../core/index.js';

/** What the control API answers with, as far as the CLI reads it (the API's schemas are the source). */

export type Db = PublicDb;

export interface Tenant {
  id: string;
  name: string;
  pg_user: string;
  created_at: string;
  updated_at: string;
}

export interface Credentials {
  pg_user: string;
  pg_password: string;
  dsn_template: string;
}

export type CreatedTenant = { tenant: Tenant } & Credentials;
