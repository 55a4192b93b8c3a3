-- mailplane schema, version 1 (SQLite).
-- Ids come from AUTOINCREMENT counters: one past the largest id used so far. The rows
-- seeded into sqlite_sequence at the end give a fresh database ids of Zoho's width
-- (8-digit zoid and zuid, 19-digit accountId), with zoid and zuid below 2^53 since the
-- wire sends them as JSON numbers. (The demo inserts its own larger ids; new ones follow.)

CREATE TABLE orgs (
    zoid        INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE domains (
    name        TEXT    PRIMARY KEY,
    zoid        INTEGER NOT NULL REFERENCES orgs(zoid) ON DELETE CASCADE,
    is_primary  INTEGER NOT NULL
);
CREATE INDEX domains_zoid ON domains(zoid);

CREATE TABLE users (
    zuid           INTEGER PRIMARY KEY AUTOINCREMENT,
    zoid           INTEGER NOT NULL REFERENCES orgs(zoid) ON DELETE CASCADE,
    role           TEXT    NOT NULL,
    first_name     TEXT    NOT NULL,
    last_name      TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT,
    country        TEXT    NOT NULL,
    language       TEXT    NOT NULL,
    time_zone      TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL
);
CREATE INDEX users_zoid ON users(zoid, zuid);

CREATE TABLE accounts (
    account_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    zuid                INTEGER NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    sequence            INTEGER NOT NULL,
    external_address    TEXT,
    enabled             INTEGER NOT NULL DEFAULT 1,
    outgoing_blocked    INTEGER NOT NULL DEFAULT 0,
    incoming_blocked    INTEGER NOT NULL DEFAULT 0,
    imap_enabled        INTEGER NOT NULL DEFAULT 1,
    pop_enabled         INTEGER NOT NULL DEFAULT 1,
    activesync_enabled  INTEGER NOT NULL DEFAULT 0,
    created_ms          INTEGER NOT NULL,
    last_login_ms       INTEGER NOT NULL DEFAULT -1
);
CREATE INDEX accounts_zuid ON accounts(zuid, sequence);

-- Every hosted address on the server, lower-case: the primary key makes an address
-- belong to one account at most.
CREATE TABLE addresses (
    address     TEXT    PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    is_primary  INTEGER NOT NULL
);
CREATE INDEX addresses_account ON addresses(account_id);

CREATE TABLE identities (
    send_mail_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    from_address     TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    mode             TEXT    NOT NULL,
    server_name      TEXT,
    server_port      INTEGER,
    user_name        TEXT,
    -- XChaCha20-Poly1305 ciphertext of the relay password, bound to this row's
    -- account and address; the key is never in the database.
    password_enc     BLOB,
    smtp_connection  TEXT,
    created_ms       INTEGER NOT NULL,
    UNIQUE (account_id, from_address)
);

-- Access tokens, by SHA-256 digest: the token itself is never stored.
CREATE TABLE tokens (
    token_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      TEXT    NOT NULL UNIQUE,
    zuid        INTEGER NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes      TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER
);

-- One row per successful change. No foreign keys: the trail outlives what it describes.
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms           INTEGER NOT NULL,
    request_id      TEXT,
    actor_zuid      INTEGER,
    actor_token_id  INTEGER,
    client_addr     TEXT,
    zoid            INTEGER,
    zuid            INTEGER,
    account_id      INTEGER,
    mode            TEXT    NOT NULL,
    before          TEXT    NOT NULL,
    after           TEXT    NOT NULL
);
CREATE INDEX audit_org ON audit(zoid, id);

INSERT INTO sqlite_sequence (name, seq) VALUES
    ('orgs', 60000000),
    ('users', 70000000),
    ('accounts', 3000000000000000000),
    ('identities', 4000000000000000000);
