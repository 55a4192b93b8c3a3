-- mailplane schema, version 9 (PostgreSQL): what Zoho's Add User page takes besides the
-- names: when the user expires, and the profile fields of an HR record.
--
-- When the user stops being able to sign in (OAuth) and log in to mail, in epoch
-- milliseconds; NULL for never. Set from `userExpiry` (days) when the user is created.
ALTER TABLE users ADD COLUMN expires_ms BIGINT;
-- Kept and shown; nothing else reads them. Empty when not given.
ALTER TABLE users ADD COLUMN employee_id   TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN department    TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN designation   TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN mobile_number TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN extension     TEXT NOT NULL DEFAULT '';
