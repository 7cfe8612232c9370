-- A db's describe reads its last wake and handoff from its events: one index lookup per event type.
CREATE INDEX IF NOT EXISTS events_db_type ON events (db_id, type, id);
