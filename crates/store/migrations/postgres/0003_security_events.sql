-- mailplane schema, version 3 (PostgreSQL): requests refused on the admin URLs.
CREATE TABLE security_events (
    id           BIGSERIAL PRIMARY KEY,
    at_ms        BIGINT  NOT NULL,
    request_id   TEXT,
    client_addr  TEXT,
    zoid         BIGINT  NOT NULL,
    method       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    error_code   TEXT    NOT NULL
);
CREATE INDEX security_events_org ON security_events(zoid, id);
