-- Issue 5: autoscaling limits per db, and the fencing epoch of the acting autoscaler.

-- The policy moves a running db between these profiles; null (the default) leaves it at its size.
ALTER TABLE dbs ADD COLUMN min_profile text;
ALTER TABLE dbs ADD COLUMN max_profile text;

-- Each new holder of a control lease takes the next epoch from here, so epochs grow
-- across restarts of every coordinator, the in-process one included (DESIGN §3, fencing).
CREATE TABLE control_epochs (
  name   text PRIMARY KEY,
  epoch  bigint NOT NULL
);
