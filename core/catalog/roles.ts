import type pg from 'pg';
import { randomId } from '../ids.js';
import { inTransaction } from './catalog.js';
import type { EventStore } from './events.js';

export type RoleKind = 'password' | 'oauth';
export type IdentityClaim = 'sub' | 'email';

/** A Postgres role of one db besides the tenant's login (DESIGN §2 `roles`). */
export interface RoleRecord {
  id: string;
  db_id: string;
  name: string;
  kind: RoleKind;
  /** Password roles: what the gateway checks. Null for oauth roles. */
  scram_verifier: string | null;
  /** Oauth roles: the token's `sub` or `email` that must match, with the claim it is in; null when unbound. */
  identity: string | null;
  identity_claim: IdentityClaim | null;
  /** Only tokens of this issuer may carry the identity; null: any trusted issuer. */
  identity_issuer: string | null;
  created_at: string;
  updated_at: string;
}

export interface RoleIdentity {
  claim: IdentityClaim;
  value: string;
  issuer: string | null;
}

/** Who a role change is recorded for in the event log. */
export interface RoleOwner {
  accountId: string;
  tenantId: string;
}

/**
 * Roles per db. The catalog is the truth: the gateway reads it at every login (so a
 * deleted role is refused at once) and the autoscaler makes each compute match it.
 */
export class RoleStore {
  constructor(private readonly pool: pg.Pool, private readonly events: EventStore) {}

  async create(owner: RoleOwner, input: { dbId: string; name: string; kind: RoleKind; scramVerifier: string | null; identity: RoleIdentity | null }): Promise<RoleRecord> {
    const { role, event } = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<RoleRecord>(
        `INSERT INTO roles (id, db_id, name, kind, scram_verifier, identity, identity_claim, identity_issuer)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
        [randomId('role'), input.dbId, input.name, input.kind, input.scramVerifier, input.identity?.value ?? null, input.identity?.claim ?? null, input.identity?.issuer ?? null],
      );
      const role = rows[0]!;
      await bumpVersion(c, role.db_id);
      const event = await this.events.append(c, { account_id: owner.accountId, tenant_id: owner.tenantId, db_id: role.db_id, type: 'role.created', data: eventData(role) });
      return { role, event };
    });
    this.events.announce(event);
    return role;
  }

  async list(dbId: string): Promise<RoleRecord[]> {
    const { rows } = await this.pool.query<RoleRecord>('SELECT * FROM roles WHERE db_id = $1 ORDER BY name', [dbId]);
    return rows;
  }

  async byName(dbId: string, name: string): Promise<RoleRecord | null> {
    const { rows } = await this.pool.query<RoleRecord>('SELECT * FROM roles WHERE db_id = $1 AND name = $2', [dbId, name]);
    return rows[0] ?? null;
  }

  /** The oauth roles named `name` in any live db of the tenant: what a tenant-wide credential may log in as. */
  async oauthRolesInTenant(tenantId: string, name: string): Promise<RoleRecord[]> {
    const { rows } = await this.pool.query<RoleRecord>(
      `SELECT r.* FROM roles r JOIN dbs d ON d.id = r.db_id
        WHERE d.tenant_id = $1 AND r.name = $2 AND r.kind = 'oauth' AND d.state NOT IN ('deleting', 'deleted') ORDER BY d.name`,
      [tenantId, name],
    );
    return rows;
  }

  /** Changes the verifier and/or the identity; a field left undefined stays. Null when the role is gone. */
  async update(owner: RoleOwner, id: string, patch: { scramVerifier?: string; identity?: RoleIdentity | null }): Promise<RoleRecord | null> {
    const result = await inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<RoleRecord>(
        `UPDATE roles SET
           scram_verifier  = CASE WHEN $2 THEN $3 ELSE scram_verifier END,
           identity        = CASE WHEN $4 THEN $5 ELSE identity END,
           identity_claim  = CASE WHEN $4 THEN $6 ELSE identity_claim END,
           identity_issuer = CASE WHEN $4 THEN $7 ELSE identity_issuer END,
           updated_at = now()
         WHERE id = $1 RETURNING *`,
        [id, patch.scramVerifier !== undefined, patch.scramVerifier ?? null, patch.identity !== undefined, patch.identity?.value ?? null, patch.identity?.claim ?? null, patch.identity?.issuer ?? null],
      );
      const role = rows[0];
      if (!role) return null;
      const data = { ...eventData(role), password_reset: patch.scramVerifier !== undefined };
      const event = await this.events.append(c, { account_id: owner.accountId, tenant_id: owner.tenantId, db_id: role.db_id, type: 'role.updated', data });
      return { role, event };
    });
    if (!result) return null;
    this.events.announce(result.event);
    return result.role;
  }

  /** Removes the role; from the commit on the gateway refuses it. False when it was gone already. */
  async delete(owner: RoleOwner, role: RoleRecord): Promise<boolean> {
    const result = await inTransaction(this.pool, async (c) => {
      const { rowCount } = await c.query('DELETE FROM roles WHERE id = $1', [role.id]);
      if (rowCount === 0) return null;
      await bumpVersion(c, role.db_id);
      return this.events.append(c, { account_id: owner.accountId, tenant_id: owner.tenantId, db_id: role.db_id, type: 'role.deleted', data: eventData(role) });
    });
    if (!result) return false;
    this.events.announce(result);
    return true;
  }

  /**
   * The db's roles with the version they are at, read together, and the version
   * its compute was last made to match. Equal versions: nothing to apply.
   */
  async syncState(dbId: string): Promise<RoleSyncState> {
    const { rows } = await this.pool.query<{ version: number | null; synced_version: number | null; roles: RoleRecord[] | null }>(
      `SELECT v.version, v.synced_version, (SELECT json_agg(r ORDER BY r.name) FROM roles r WHERE r.db_id = $1) AS roles
         FROM (SELECT $1::text AS db_id) d LEFT JOIN role_versions v ON v.db_id = d.db_id`,
      [dbId],
    );
    const row = rows[0]!;
    return { version: row.version ?? 0, syncedVersion: row.synced_version ?? 0, roles: row.roles ?? [] };
  }

  /** Records that the db's compute matches the roles at `version` (never going back). */
  async markSynced(dbId: string, version: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO role_versions (db_id, version, synced_version) VALUES ($1, $2, $2)
       ON CONFLICT (db_id) DO UPDATE SET synced_version = GREATEST(role_versions.synced_version, EXCLUDED.synced_version)`,
      [dbId, version],
    );
  }

  /** The compute lost its roles (its storage was made anew): the next start applies every role. */
  async markUnsynced(dbId: string): Promise<void> {
    await this.pool.query('UPDATE role_versions SET synced_version = -1 WHERE db_id = $1', [dbId]);
  }
}

export interface RoleSyncState {
  version: number;
  syncedVersion: number;
  roles: RoleRecord[];
}

async function bumpVersion(c: pg.PoolClient, dbId: string): Promise<void> {
  await c.query('INSERT INTO role_versions (db_id, version) VALUES ($1, 1) ON CONFLICT (db_id) DO UPDATE SET version = role_versions.version + 1', [dbId]);
}

/** What the event log shows of a role: never its verifier. */
function eventData(role: RoleRecord): Record<string, unknown> {
  return { role: role.name, kind: role.kind, db_id: role.db_id };
}
