-- mailplane schema, version 1 (PostgreSQL).
-- Ids come from sequences, so every node gets unique ones without coordinating. They
-- start at Zoho's widths (8-digit zoid and zuid, 19-digit accountId), with zoid and zuid
-- below 2^53 since the wire sends them as JSON numbers.

CREATE SEQUENCE orgs_zoid_seq START 60000001;
CREATE SEQUENCE users_zuid_seq START 70000001;
CREATE SEQUENCE accounts_id_seq START 3000000000000000001;
CREATE SEQUENCE identities_id_seq START 4000000000000000001;

CREATE TABLE orgs (
    zoid        BIGINT  PRIMARY KEY DEFAULT nextval('orgs_zoid_seq'),
    name        TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL
);

CREATE TABLE domains (
    name        TEXT    PRIMARY KEY,
    zoid        BIGINT  NOT NULL REFERENCES orgs(zoid) ON DELETE CASCADE,
    is_primary  BOOLEAN NOT NULL
);
CREATE INDEX domains_zoid ON domains(zoid);

CREATE TABLE users (
    zuid           BIGINT  PRIMARY KEY DEFAULT nextval('users_zuid_seq'),
    zoid           BIGINT  NOT NULL REFERENCES orgs(zoid) ON DELETE CASCADE,
    role           TEXT    NOT NULL,
    first_name     TEXT    NOT NULL,
    last_name      TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    password_hash  TEXT,
    country        TEXT    NOT NULL,
    language       TEXT    NOT NULL,
    time_zone      TEXT    NOT NULL,
    created_ms     BIGINT  NOT NULL
);
CREATE INDEX users_zoid ON users(zoid, zuid);

CREATE TABLE accounts (
    account_id          BIGINT  PRIMARY KEY DEFAULT nextval('accounts_id_seq'),
    zuid                BIGINT  NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    sequence            INTEGER NOT NULL,
    external_address    TEXT,
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    outgoing_blocked    BOOLEAN NOT NULL DEFAULT FALSE,
    incoming_blocked    BOOLEAN NOT NULL DEFAULT FALSE,
    imap_enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    pop_enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    activesync_enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms          BIGINT  NOT NULL,
    last_login_ms       BIGINT  NOT NULL DEFAULT -1
);
CREATE INDEX accounts_zuid ON accounts(zuid, sequence);

-- Every hosted address on the server, lower-case: the primary key makes an address
-- belong to one account at most, across all nodes.
CREATE TABLE addresses (
    address     TEXT    PRIMARY KEY,
    account_id  BIGINT  NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    is_primary  BOOLEAN NOT NULL
);
CREATE INDEX addresses_account ON addresses(account_id);

CREATE TABLE identities (
    send_mail_id     BIGINT  PRIMARY KEY DEFAULT nextval('identities_id_seq'),
    account_id       BIGINT  NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    from_address     TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    mode             TEXT    NOT NULL,
    server_name      TEXT,
    server_port      INTEGER,
    user_name        TEXT,
    -- XChaCha20-Poly1305 ciphertext of the relay password, bound to this row's account
    -- and address; the key is never in the database.
    password_enc     BYTEA,
    smtp_connection  TEXT,
    created_ms       BIGINT  NOT NULL,
    UNIQUE (account_id, from_address)
);

-- Access tokens, by SHA-256 digest: the token itself is never stored.
CREATE TABLE tokens (
    token_id    BIGSERIAL PRIMARY KEY,
    digest      TEXT    NOT NULL UNIQUE,
    zuid        BIGINT  NOT NULL REFERENCES users(zuid) ON DELETE CASCADE,
    scopes      TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    expires_ms  BIGINT,
    revoked_ms  BIGINT
);

-- One row per successful change. No foreign keys: the trail outlives what it describes.
CREATE TABLE audit (
    id              BIGSERIAL PRIMARY KEY,
    at_ms           BIGINT  NOT NULL,
    request_id      TEXT,
    actor_zuid      BIGINT,
    actor_token_id  BIGINT,
    client_addr     TEXT,
    zoid            BIGINT,
    zuid            BIGINT,
    account_id      BIGINT,
    mode            TEXT    NOT NULL,
    before          TEXT    NOT NULL,
    after           TEXT    NOT NULL
);
CREATE INDEX audit_org ON audit(zoid, id);
