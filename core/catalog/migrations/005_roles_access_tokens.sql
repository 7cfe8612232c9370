-- Issue 6: database roles beyond the tenant's login, who may connect from where, and
-- the lifetime of the keys that sign database credentials (OAuth tokens).

-- An oauth role is bound to an identity in the token: its `sub` or its `email`,
-- optionally from one issuer only. Password roles keep their SCRAM verifier.
ALTER TABLE roles ADD COLUMN identity_claim text CHECK (identity_claim IN ('sub', 'email'));
ALTER TABLE roles ADD COLUMN identity_issuer text;
ALTER TABLE roles ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Every role created or dropped bumps its db's `version`; the autoscaler records the
-- version a compute's roles match in `synced_version`, so a start with nothing new
-- to apply does not even connect to the compute for it.
CREATE TABLE role_versions (
  db_id           text PRIMARY KEY REFERENCES dbs(id) ON DELETE CASCADE,
  version         bigint NOT NULL DEFAULT 0,
  synced_version  bigint NOT NULL DEFAULT 0
);

-- A retired key keeps being published until the last token it signed has expired.
ALTER TABLE signing_keys ADD COLUMN alg text NOT NULL DEFAULT 'ES256';
ALTER TABLE signing_keys ADD COLUMN published_until timestamptz;
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- Access rules of a tenant (db_id null) or of one db: null fields are "not set here".
CREATE TABLE access_rules (
  scope_id                    text PRIMARY KEY,   -- the tenant id or the db id
  tenant_id                   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  db_id                       text REFERENCES dbs(id) ON DELETE CASCADE,
  allowed_cidrs               cidr[],             -- null or empty: any address
  require_ssl                 boolean NOT NULL DEFAULT false,
  max_connections             int,
  idle_timeout_seconds        int,
  max_connection_life_seconds int,
  updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Failed logins per address, counted in a window; enough of them ban the address.
-- The scope is the db the login was for, or the tenant when no db was known.
CREATE TABLE login_failures (
  scope_id  text NOT NULL,
  address   inet NOT NULL,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_scope ON login_failures (scope_id, address, at);

CREATE TABLE network_bans (
  scope_id      text NOT NULL,
  tenant_id     text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  db_id         text REFERENCES dbs(id) ON DELETE CASCADE,
  address       inet NOT NULL,
  failures      int NOT NULL,
  banned_at     timestamptz NOT NULL DEFAULT now(),
  banned_until  timestamptz NOT NULL,
  PRIMARY KEY (scope_id, address)
);
CREATE INDEX network_bans_tenant ON network_bans (tenant_id);
