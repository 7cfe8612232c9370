import type { PublicDb } from '../core/index.js';

/** What the control API answers with, as far as the CLI reads it (the API's schemas are the source). */

export type Db = PublicDb;

/** The describe's `live` (GET /v2/dbs/:id): activity at the gateways, last wake and handoff. */
export interface DbLive {
  client_connections: number;
  checkouts_in_flight: number;
  checkouts_waiting: number;
  open_transactions: number;
  last_wake_seconds: number | null;
  last_wake_at: string | null;
  last_handoff: { result: 'succeeded' | 'failed' | 'in_progress'; reason: string | null; at: string; from_profile: string | null; to_profile: string | null } | null;
}

/** A describe carries `live`; create, patch and delete answer without it. */
export type DescribedDb = Db & { live?: DbLive };

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
