-- mailplane schema (SQLite): the web console.
--
-- A console session is a row of `tokens` (kind 'console'), so that every change made in
-- the console goes through the same authentication, grants and audit as the API. Its
-- cookie holds the token; only the digest is stored, as for every token. `expires_ms` is
-- the absolute limit; `idle_until_ms` moves forward while the session is used, by at most
-- `idle_ms`. API tokens have neither (NULL).
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE tokens ADD COLUMN idle_ms INTEGER;
ALTER TABLE tokens ADD COLUMN idle_until_ms INTEGER;
CREATE INDEX tokens_console ON tokens(zuid) WHERE kind = 'console';

-- Where a change came from: 'api' or 'console'. NULL for rows from before it was kept
-- (all of them from the API) and for the system's own rows.
ALTER TABLE audit ADD COLUMN via TEXT;

-- The organization whose admin registered a client in the console, which alone may list
-- and delete it there. NULL: registered by the operator on the command line.
ALTER TABLE oauth_clients ADD COLUMN zoid INTEGER;
CREATE INDEX oauth_clients_zoid ON oauth_clients(zoid);

-- The console offers the modes present in an organization's trail as a filter's choices;
-- they are read one by one along this index rather than by reading the whole trail.
CREATE INDEX audit_org_mode ON audit(zoid, mode);
