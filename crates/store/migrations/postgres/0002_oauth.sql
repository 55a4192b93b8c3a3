-- mailplane schema, version 2 (PostgreSQL): OAuth clients, refresh tokens and
-- authorization codes. Secrets are stored as SHA-256 digests only.

CREATE TABLE oauth_clients (
    client_id      TEXT    PRIMARY KEY,
    secret_digest  TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    redirect_uri   TEXT,
    created_ms     BIGINT  NOT NULL
);

CREATE TABLE refresh_tokens (
    id          BIGSERIAL PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    client_id   TEXT    NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    zuid        BIGINT  NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes      TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    revoked_ms  BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(zuid, client_id, created_ms);

CREATE TABLE auth_codes (
    digest        TEXT    PRIMARY KEY,
    client_id     TEXT    NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    zuid          BIGINT  NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes        TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    expires_ms    BIGINT  NOT NULL,
    approved      BOOLEAN NOT NULL DEFAULT FALSE,
    used_ms       BIGINT
);

ALTER TABLE tokens ADD COLUMN refresh_id BIGINT REFERENCES refresh_tokens(id) ON DELETE CASCADE;
CREATE INDEX tokens_refresh ON tokens(refresh_id);
