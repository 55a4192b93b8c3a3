-- mailplane schema, version 2 (SQLite): OAuth clients, refresh tokens and authorization
-- codes, as Zoho's accounts server issues them. Secrets are stored as SHA-256 digests only.

CREATE TABLE oauth_clients (
    client_id      TEXT    PRIMARY KEY,
    secret_digest  TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    redirect_uri   TEXT,
    created_ms     INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      TEXT    NOT NULL UNIQUE,
    client_id   TEXT    NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    zuid        INTEGER NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes      TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(zuid, client_id, created_ms);

-- An authorization code is issued at sign-in and becomes exchangeable once the user
-- approves the consent page; it is single-use and short-lived.
CREATE TABLE auth_codes (
    digest        TEXT    PRIMARY KEY,
    client_id     TEXT    NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    zuid          INTEGER NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes        TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    expires_ms    INTEGER NOT NULL,
    approved      INTEGER NOT NULL DEFAULT 0,
    used_ms       INTEGER
);

-- Access tokens minted from a refresh token die with it.
ALTER TABLE tokens ADD COLUMN refresh_id INTEGER REFERENCES refresh_tokens(id) ON DELETE CASCADE;
CREATE INDEX tokens_refresh ON tokens(refresh_id);
