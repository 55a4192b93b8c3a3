-- mailplane schema (SQLite): what a client asked for, kept beside what it was granted.
-- `scopes` stays the served scopes, the only ones a token may use; `requested_scopes` is
-- the request's scope string as written (bounded by the parser), NULL for rows from
-- before it was recorded, when nothing but served scopes could be asked for.
ALTER TABLE auth_codes ADD COLUMN requested_scopes TEXT;
ALTER TABLE refresh_tokens ADD COLUMN requested_scopes TEXT;
