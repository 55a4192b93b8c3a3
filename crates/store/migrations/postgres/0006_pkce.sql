-- mailplane schema, version 6 (PostgreSQL): PKCE (RFC 7636). The challenge an
-- authorization request binds to its code: the method the client named (`plain` or
-- `S256`, NULL for none) and base64url(SHA-256(verifier)), which the token request's
-- verifier must match.
ALTER TABLE auth_codes ADD COLUMN pkce_method TEXT;
ALTER TABLE auth_codes ADD COLUMN pkce_digest TEXT;
