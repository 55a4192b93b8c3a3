-- mailplane schema, version 7 (SQLite): refusals are counted, not written one by one. A
-- row stands for `count` refusals alike (organization, client, status, error code, user)
-- between first_ms and at_ms, with one sample request; a row of its own has count 1.
ALTER TABLE security_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE security_events ADD COLUMN first_ms INTEGER;
-- Retention deletes the oldest first.
CREATE INDEX security_events_at ON security_events(at_ms);
CREATE INDEX audit_at ON audit(at_ms);
