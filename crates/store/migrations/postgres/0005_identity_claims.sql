-- mailplane schema, version 5 (PostgreSQL): identities by address. Who may send as an address is
-- decided at each lookup of the mail server from every account's claim on it.
CREATE INDEX identities_from ON identities(from_address);
