-- Issue 10: API key rotation, usage records kept by the catalog itself, idempotency keys.

-- Keys are found by their display prefix, then their hash is compared in constant time.
ALTER TABLE api_keys ADD COLUMN name text;
ALTER TABLE api_keys ADD COLUMN replaced_by text;  -- set by rotation: the key that succeeds this one
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Names kept with the interval, so a bill still names a db after its row is gone.
ALTER TABLE usage ADD COLUMN tenant_id text;
ALTER TABLE usage ADD COLUMN tenant text;
ALTER TABLE usage ADD COLUMN db_name text;
-- At most one open interval per db.
CREATE UNIQUE INDEX usage_open ON usage (db_id) WHERE ended_at IS NULL;
CREATE INDEX usage_account_ended ON usage (account_id, ended_at);

-- A usage interval is open exactly while the db's row says `running`, at its
-- `current_profile`. Kept by a trigger in the same transaction as the state
-- write (and its db.* event), so usage can never disagree with the lifecycle,
-- and no role has to remember to record it. now() is the transaction's time,
-- the same instant the event and `updated_at` carry.
CREATE FUNCTION pgwake_track_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state = 'running' THEN
    -- A profile change while running (a handoff's cutover) ends one interval and starts the next.
    UPDATE usage SET ended_at = now() WHERE db_id = NEW.id AND ended_at IS NULL AND profile <> NEW.current_profile;
    INSERT INTO usage (db_id, account_id, profile, started_at, tenant_id, tenant, db_name)
      SELECT NEW.id, NEW.account_id, NEW.current_profile, now(), NEW.tenant_id, t.name, NEW.name
        FROM tenants t WHERE t.id = NEW.tenant_id
      ON CONFLICT (db_id) WHERE ended_at IS NULL DO NOTHING;
  ELSE
    UPDATE usage SET ended_at = now() WHERE db_id = NEW.id AND ended_at IS NULL;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER dbs_track_usage AFTER INSERT OR UPDATE OF state, current_profile ON dbs
  FOR EACH ROW EXECUTE FUNCTION pgwake_track_usage();

-- Dbs already running when this migration runs: their interval starts at their last change.
INSERT INTO usage (db_id, account_id, profile, started_at, tenant_id, tenant, db_name)
  SELECT d.id, d.account_id, d.current_profile, d.updated_at, d.tenant_id, t.name, d.name
    FROM dbs d JOIN tenants t ON t.id = d.tenant_id
   WHERE d.state = 'running';

-- Idempotency-Key: the first result of a mutating call, replayed to retries for a day.
CREATE TABLE idempotency_keys (
  account_id      text NOT NULL,
  key             text NOT NULL,
  fingerprint     bytea NOT NULL,        -- sha256 of method, path and canonical body
  state           text NOT NULL CHECK (state IN ('running', 'done')),
  locked_until    timestamptz NOT NULL,  -- a `running` record older than this was abandoned (a crash)
  status          int,
  content_type    text,
  body_sealed     text,                  -- AES-GCM: responses carry passwords and API keys
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
