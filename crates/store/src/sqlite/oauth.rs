//! OAuth clients, codes and refresh tokens on SQLite.

use mailplane_domain::{ScopeSet, Zuid};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::oauth::{
    new_client_id, new_secret, pkce_satisfied, ClientCredentials, CodeChallenge, Credentials,
    Exchange, IssuedTokens, OAuthClient, OAuthError, PendingCode, AUTH_CODE_PREFIX,
    AUTH_CODE_TTL_MS, CLIENT_SECRET_PREFIX, MAX_REFRESH_TOKENS_PER_GRANT, REFRESH_TOKEN_PREFIX,
};
use crate::secrets::{new_access_token, token_digest};
use crate::{now_ms, ProvisionError, StoreError};

fn scopes(text: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse_list(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn create_client(
    tx: &Transaction<'_>,
    name: &str,
    redirect_uri: Option<&str>,
) -> Result<ClientCredentials, StoreError> {
    let creds = ClientCredentials {
        client_id: new_client_id(),
        client_secret: new_secret(CLIENT_SECRET_PREFIX),
    };
    tx.execute(
        "INSERT INTO oauth_clients (client_id, secret_digest, name, redirect_uri, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![creds.client_id, token_digest(&creds.client_secret), name, redirect_uri, now_ms()],
    )?;
    Ok(creds)
}

pub(super) fn client(c: &Connection, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
    Ok(c.query_row(
        "SELECT client_id, name, redirect_uri FROM oauth_clients WHERE client_id = ?1",
        [client_id],
        |r| {
            Ok(OAuthClient {
                client_id: r.get(0)?,
                name: r.get(1)?,
                redirect_uri: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// Checks a client's credentials.
fn authenticate_client(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
) -> Result<(), OAuthError> {
    let stored: Option<String> = tx
        .query_row(
            "SELECT secret_digest FROM oauth_clients WHERE client_id = ?1",
            [client_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    match stored {
        Some(d) if d == token_digest(secret) => Ok(()),
        _ => Err(OAuthError::InvalidClient),
    }
}

/// A new refresh token; the oldest live ones of the same user and client are revoked
/// (with their access tokens) beyond the limit.
fn insert_refresh(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
) -> Result<(i64, String), StoreError> {
    let now = now_ms();
    let live: Vec<i64> = tx
        .prepare("SELECT id FROM refresh_tokens WHERE zuid = ?1 AND client_id = ?2 AND revoked_ms IS NULL ORDER BY created_ms, id")?
        .query_map(params![zuid.as_i64(), client_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let excess = (live.len() + 1).saturating_sub(MAX_REFRESH_TOKENS_PER_GRANT);
    for id in &live[..excess] {
        revoke_refresh_id(tx, *id, now)?;
    }
    let token = new_secret(REFRESH_TOKEN_PREFIX);
    tx.execute(
        "INSERT INTO refresh_tokens (digest, client_id, zuid, scopes, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token_digest(&token), client_id, zuid.as_i64(), scopes.to_string(), now],
    )?;
    Ok((tx.last_insert_rowid(), token))
}

fn revoke_refresh_id(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE refresh_tokens SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms IS NULL",
        params![now, id],
    )?;
    tx.execute(
        "UPDATE tokens SET revoked_ms = ?1 WHERE refresh_id = ?2 AND revoked_ms IS NULL",
        params![now, id],
    )?;
    Ok(())
}

fn mint_access(
    tx: &Transaction<'_>,
    zuid: Zuid,
    scopes: &ScopeSet,
    refresh_id: i64,
    ttl_secs: u64,
) -> Result<String, StoreError> {
    let token = new_access_token();
    let now = now_ms();
    tx.execute(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms, refresh_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![token_digest(&token), zuid.as_i64(), scopes.to_string(), now, now + (ttl_secs as i64) * 1000, refresh_id],
    )?;
    Ok(token)
}

/// `mailplane oauth grant`: a refresh token for a user, without the browser.
pub(super) fn grant(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
) -> Result<String, ProvisionError> {
    if client(tx, client_id)?.is_none() {
        return Err(ProvisionError::Refused(format!(
            "no OAuth client has the id {client_id}"
        )));
    }
    let user = tx
        .prepare_cached("SELECT 1 FROM users WHERE zuid = ?1")?
        .exists([zuid.as_i64()])?;
    if !user {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    Ok(insert_refresh(tx, client_id, zuid, scopes)?.1)
}

/// The user behind a sign-in address (any address of a hosted account).
pub(super) fn credentials(c: &Connection, email: &str) -> Result<Option<Credentials>, StoreError> {
    Ok(c.query_row(
        "SELECT u.zuid, u.password_hash FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         JOIN users u ON u.zuid = a.zuid WHERE d.address = ?1",
        [email],
        |r| Ok(Credentials { zuid: Zuid::from_db(r.get(0)?), password_hash: r.get(1)? }),
    )
    .optional()?)
}

pub(super) fn issue_code(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
    redirect_uri: &str,
    pkce: Option<&CodeChallenge>,
) -> Result<String, StoreError> {
    let code = new_secret(AUTH_CODE_PREFIX);
    tx.execute(
        "INSERT INTO auth_codes (digest, client_id, zuid, scopes, redirect_uri, expires_ms, pkce_method, pkce_digest) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            token_digest(&code),
            client_id,
            zuid.as_i64(),
            scopes.to_string(),
            redirect_uri,
            now_ms() + AUTH_CODE_TTL_MS,
            pkce.map(|p| p.method),
            pkce.map(|p| &p.digest),
        ],
    )?;
    Ok(code)
}

/// A code that is neither expired, used nor decided yet.
pub(super) fn pending_code(c: &Connection, code: &str) -> Result<Option<PendingCode>, StoreError> {
    let row = c
        .query_row(
            "SELECT k.client_id, o.name, o.redirect_uri, k.zuid, k.scopes, k.redirect_uri FROM auth_codes k \
             JOIN oauth_clients o ON o.client_id = k.client_id \
             WHERE k.digest = ?1 AND k.expires_ms > ?2 AND k.used_ms IS NULL AND k.approved = 0",
            params![token_digest(code), now_ms()],
            |r| {
                Ok((
                    OAuthClient { client_id: r.get(0)?, name: r.get(1)?, redirect_uri: r.get(2)? },
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    row.map(|(client, zuid, s, redirect_uri)| {
        Ok(PendingCode {
            client,
            zuid: Zuid::from_db(zuid),
            scopes: scopes(&s)?,
            redirect_uri,
        })
    })
    .transpose()
}

/// Records the user's consent (or refusal) for a pending code; its redirect URI when the
/// code was pending.
pub(super) fn decide_code(
    tx: &Transaction<'_>,
    code: &str,
    approve: bool,
) -> Result<Option<String>, StoreError> {
    let digest = token_digest(code);
    let redirect: Option<String> = tx
        .query_row(
            "SELECT redirect_uri FROM auth_codes WHERE digest = ?1 AND expires_ms > ?2 AND used_ms IS NULL AND approved = 0",
            params![digest, now_ms()],
            |r| r.get(0),
        )
        .optional()?;
    if redirect.is_some() {
        if approve {
            tx.execute(
                "UPDATE auth_codes SET approved = 1 WHERE digest = ?1",
                [&digest],
            )?;
        } else {
            tx.execute(
                "UPDATE auth_codes SET used_ms = ?1 WHERE digest = ?2",
                params![now_ms(), digest],
            )?;
        }
    }
    Ok(redirect)
}

pub(super) fn exchange_code(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    ttl_secs: u64,
) -> Result<Exchange, OAuthError> {
    authenticate_client(tx, client_id, secret)?;
    let digest = token_digest(code);
    let row = tx
        .query_row(
            "SELECT zuid, scopes, redirect_uri, pkce_digest FROM auth_codes WHERE digest = ?1 AND client_id = ?2 \
             AND approved = 1 AND used_ms IS NULL AND expires_ms > ?3",
            params![digest, client_id, now_ms()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::from)?;
    let (zuid, granted, issued_for, pkce) = row.ok_or(OAuthError::InvalidCode)?;
    if redirect_uri.is_some_and(|r| r != issued_for) {
        return Err(OAuthError::InvalidRedirectUri);
    }
    // Single use: the code is spent whatever happens next.
    tx.execute(
        "UPDATE auth_codes SET used_ms = ?1 WHERE digest = ?2",
        params![now_ms(), digest],
    )
    .map_err(StoreError::from)?;
    if !pkce_satisfied(pkce.as_deref(), code_verifier) {
        return Ok(Exchange::SpentOnPkce);
    }
    let (zuid, scopes) = (Zuid::from_db(zuid), scopes(&granted)?);
    let (refresh_id, refresh_token) = insert_refresh(tx, client_id, zuid, &scopes)?;
    let access_token = mint_access(tx, zuid, &scopes, refresh_id, ttl_secs)?;
    Ok(Exchange::Tokens(IssuedTokens {
        access_token,
        refresh_token: Some(refresh_token),
        scopes,
        expires_in_secs: ttl_secs,
    }))
}

pub(super) fn refresh(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
    refresh_token: &str,
    ttl_secs: u64,
) -> Result<IssuedTokens, OAuthError> {
    authenticate_client(tx, client_id, secret)?;
    let row = tx
        .query_row(
            "SELECT id, zuid, scopes FROM refresh_tokens WHERE digest = ?1 AND client_id = ?2 AND revoked_ms IS NULL",
            params![token_digest(refresh_token), client_id],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    let (id, zuid, granted) = row.ok_or(OAuthError::InvalidCode)?;
    // The grant's scopes exactly: a refresh never widens them.
    let scopes = scopes(&granted)?;
    let access_token = mint_access(tx, Zuid::from_db(zuid), &scopes, id, ttl_secs)?;
    Ok(IssuedTokens {
        access_token,
        refresh_token: None,
        scopes,
        expires_in_secs: ttl_secs,
    })
}

/// Revokes a refresh token with every access token minted from it, or a lone access
/// token; `false` when the token is unknown or already revoked.
pub(super) fn revoke(tx: &Transaction<'_>, token: &str) -> Result<bool, StoreError> {
    let digest = token_digest(token);
    let id: Option<i64> = tx
        .query_row(
            "SELECT id FROM refresh_tokens WHERE digest = ?1 AND revoked_ms IS NULL",
            [&digest],
            |r| r.get(0),
        )
        .optional()?;
    match id {
        Some(id) => {
            revoke_refresh_id(tx, id, now_ms())?;
            Ok(true)
        }
        None => super::provision::revoke_token(tx, &digest),
    }
}
