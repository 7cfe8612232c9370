-- Each freeze of new checkouts carries a generation, so a late or repeated
-- freeze/lift message is recognised and can never leave a db frozen (DESIGN §3–4).
ALTER TABLE dbs ADD COLUMN freeze_generation bigint NOT NULL DEFAULT 0;
