-- mailplane schema, version 4 (PostgreSQL): who was refused. The zuid behind a valid token that
-- lacked the right (403) or reached outside its organization (404); NULL when no valid
-- token was presented (401).
ALTER TABLE security_events ADD COLUMN actor_zuid BIGINT;
