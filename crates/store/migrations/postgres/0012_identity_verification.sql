-- mailplane schema, version 12 (PostgreSQL): verifying send-as identities.
--
-- Ownership. An identity for an address outside the account (`extfrom`, `backupacc`,
-- `extmailbox`) counts only once its owner is confirmed: the key mailed to the address
-- came back (`verifysendmaildetails`), or an admin of the organization whose domain holds
-- the address confirmed it. The key is kept as a digest only, with when it expires and when
-- it was mailed. Among confirmed identities an address is unique server-wide.
ALTER TABLE identities ADD COLUMN owner_confirmed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE identities ADD COLUMN confirmed_ms BIGINT;
ALTER TABLE identities ADD COLUMN key_digest TEXT;
ALTER TABLE identities ADD COLUMN key_expires_ms BIGINT;
ALTER TABLE identities ADD COLUMN key_sent_ms BIGINT;
CREATE UNIQUE INDEX identities_confirmed_address ON identities (from_address)
    WHERE owner_confirmed;

-- The relay check of an `extfrom` identity: `pending`, `validated` or `failed`, the error
-- of the last failure (a sentence, never the password) and when the outcome was known.
-- `next_check_ms` is when a node should check it next (NULL: nobody schedules it); a node
-- that takes the check holds a lease until `lease_until_ms`. `relay_version` grows with
-- every change of the relay's details, so that the outcome of a check of old details is
-- never recorded over new ones.
ALTER TABLE identities ADD COLUMN relay_state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE identities ADD COLUMN relay_error TEXT;
ALTER TABLE identities ADD COLUMN relay_checked_ms BIGINT;
ALTER TABLE identities ADD COLUMN next_check_ms BIGINT;
ALTER TABLE identities ADD COLUMN lease_until_ms BIGINT;
ALTER TABLE identities ADD COLUMN lease_node TEXT;
ALTER TABLE identities ADD COLUMN relay_version BIGINT NOT NULL DEFAULT 0;
UPDATE identities SET next_check_ms = 0 WHERE mode = 'extfrom';
CREATE INDEX identities_next_check ON identities (next_check_ms)
    WHERE next_check_ms IS NOT NULL;
