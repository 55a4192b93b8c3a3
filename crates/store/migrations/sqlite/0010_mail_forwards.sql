-- mailplane schema, version 10 (SQLite): mail forwarding (Zoho's addMailForward and the
-- modes around it).
--
-- One row per forward of an account. A forward takes effect once `confirmed` (the target
-- proved it reads the address by giving back the key mailed to it) and while `enabled`.
-- The key is kept as a digest only, with when it expires and when it was last mailed (a
-- new mail waits a minute after the previous one).
CREATE TABLE mail_forwards (
    account_id      INTEGER NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    address         TEXT    NOT NULL,
    confirmed       INTEGER NOT NULL DEFAULT 0,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    key_digest      TEXT,
    key_expires_ms  INTEGER,
    key_sent_ms     INTEGER,
    created_ms      INTEGER NOT NULL,
    PRIMARY KEY (account_id, address)
);

-- `deleteZohoMailCopy`: while a forward is in effect, the mailbox keeps no copy.
ALTER TABLE accounts ADD COLUMN forward_delete_copy INTEGER NOT NULL DEFAULT 0;
