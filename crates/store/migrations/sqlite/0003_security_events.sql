-- mailplane schema, version 3 (SQLite): requests refused on the admin URLs, recorded as
-- security events beside the audit trail of changes.
CREATE TABLE security_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms        INTEGER NOT NULL,
    request_id   TEXT,
    client_addr  TEXT,
    zoid         INTEGER NOT NULL,
    method       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    error_code   TEXT    NOT NULL
);
CREATE INDEX security_events_org ON security_events(zoid, id);
