-- mailplane schema, version 8 (PostgreSQL): every address gets an id (`addEmailAlias`
-- answers each alias with its id), and users a flag for a password set as one-time.
--
-- The ids come from a sequence, so nodes never hand out the same one; the existing rows
-- take theirs from it as the column is added. 19 digits, like the account ids.
CREATE SEQUENCE addresses_id_seq START 5000000000000000001;
ALTER TABLE addresses ADD COLUMN id BIGINT NOT NULL DEFAULT nextval('addresses_id_seq') UNIQUE;
ALTER SEQUENCE addresses_id_seq OWNED BY addresses.id;

-- Whether the user's password was set as one-time (`resetPassword` with
-- `oneTimePassword`): kept and shown; nothing forces a change yet.
ALTER TABLE users ADD COLUMN password_one_time BOOLEAN NOT NULL DEFAULT FALSE;
