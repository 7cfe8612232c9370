-- The catalog: who owns what, and every db's lifecycle fields (DESIGN §2–3).

CREATE TABLE accounts (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  email       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz
);

CREATE TABLE api_keys (
  id           text PRIMARY KEY,
  account_id   text NOT NULL REFERENCES accounts(id),
  prefix       text NOT NULL,           -- shown to people, e.g. "pgw_ab12cd34"
  key_hash     bytea NOT NULL UNIQUE,   -- sha256 of the whole key; the key itself is never stored
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at   timestamptz,
  revoked_at   timestamptz
);

CREATE TABLE tenants (
  id              text PRIMARY KEY,
  account_id      text NOT NULL REFERENCES accounts(id),
  name            text NOT NULL,
  pg_user         text NOT NULL UNIQUE,  -- unique across the deployment: the gateway routes by it
  password_sealed text NOT NULL,         -- AES-GCM, so GET …/credentials can return it again
  scram_verifier  text NOT NULL,         -- what the gateway checks
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, name)
);

CREATE TABLE dbs (
  id                       text PRIMARY KEY,
  account_id               text NOT NULL REFERENCES accounts(id),
  tenant_id                text NOT NULL REFERENCES tenants(id),
  name                     text NOT NULL,
  state                    text NOT NULL,
  size                     text NOT NULL,
  current_scale            int NOT NULL DEFAULT 0,
  target_scale             int NOT NULL DEFAULT 0,
  current_profile          text NOT NULL,
  target_profile           text NOT NULL,
  candidate_profile        text,
  candidate_worker_id      text,
  candidate_writer_term    bigint,
  writer_term              bigint NOT NULL DEFAULT 1,
  scale_state              text NOT NULL DEFAULT 'STABLE',
  freeze_new_checkouts     boolean NOT NULL DEFAULT false,
  lease_control_epoch      bigint NOT NULL DEFAULT 0,
  autoscale_cooldown_until timestamptz,
  scale_phase_started_at   timestamptz,
  scale_phase_deadline_at  timestamptz,
  scale_failure_reason     text,
  suspend_timeout_seconds  int NOT NULL,
  pool_mode                text NOT NULL DEFAULT 'session',
  pool_size                int,
  handoff_timeout_action   text NOT NULL DEFAULT 'rollback',
  failure_reason           text,
  compute_host             text,
  compute_port             int,
  worker_id                text,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now()
);
-- A name is free again once its db is deleted.
CREATE UNIQUE INDEX dbs_tenant_name ON dbs (tenant_id, name) WHERE state <> 'deleted';
CREATE INDEX dbs_state ON dbs (state);

CREATE TABLE roles (
  id             text PRIMARY KEY,
  db_id          text NOT NULL REFERENCES dbs(id),
  name           text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('password', 'oauth')),
  scram_verifier text,
  identity       text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (db_id, name)
);

CREATE TABLE events (
  id          bigserial PRIMARY KEY,
  account_id  text NOT NULL,
  tenant_id   text,
  db_id       text,
  type        text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_account ON events (account_id, id);

CREATE TABLE usage (
  id          bigserial PRIMARY KEY,
  db_id       text NOT NULL,
  account_id  text NOT NULL,
  profile     text NOT NULL,
  started_at  timestamptz NOT NULL,
  ended_at    timestamptz
);
CREATE INDEX usage_account ON usage (account_id, started_at);

CREATE TABLE signing_keys (
  kid          text PRIMARY KEY,
  private_jwk  text NOT NULL,
  public_jwk   jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  retired_at   timestamptz
);
