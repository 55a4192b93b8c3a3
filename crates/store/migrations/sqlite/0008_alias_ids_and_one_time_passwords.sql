-- mailplane schema, version 8 (SQLite): every address gets an id (`addEmailAlias` answers
-- each alias with its id), and users a flag for a password set as one-time.
--
-- The address stays unique, but the key becomes an id from an AUTOINCREMENT counter: one
-- past the largest id ever used, so an id is never given twice, and one that VACUUM
-- cannot renumber (a rowid that is no declared key can change). SQLite cannot change a
-- table's key in place: the table is made anew and the rows copied, oldest first, taking
-- their ids from the counter seeded below (19 digits, like the account ids).
ALTER TABLE addresses RENAME TO addresses_before_ids;
DROP INDEX addresses_account;
CREATE TABLE addresses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    address     TEXT    NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts(account_id) ON DELETE CASCADE,
    is_primary  INTEGER NOT NULL
);
INSERT INTO sqlite_sequence (name, seq) VALUES ('addresses', 5000000000000000000);
INSERT INTO addresses (address, account_id, is_primary)
    SELECT address, account_id, is_primary FROM addresses_before_ids ORDER BY rowid;
DROP TABLE addresses_before_ids;
CREATE INDEX addresses_account ON addresses(account_id);

-- Whether the user's password was set as one-time (`resetPassword` with
-- `oneTimePassword`): kept and shown; nothing forces a change yet.
ALTER TABLE users ADD COLUMN password_one_time INTEGER NOT NULL DEFAULT 0;
