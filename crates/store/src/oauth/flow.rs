//! OAuth clients, authorization codes and refresh tokens: what the browser flow, the
//! token endpoint and `mailplane oauth` read and write.

use mailplane_domain::{is_expired, ScopeRequest, ScopeSet, Zoid, Zuid};

use super::{
    new_client_id, new_secret, pkce_satisfied, ClientCredentials, CodeChallenge, Credentials,
    Exchange, IssuedTokens, OAuthClient, OAuthError, PendingCode, AUTH_CODE_PREFIX,
    AUTH_CODE_TTL_MS, CLIENT_SECRET_PREFIX, MAX_REFRESH_TOKENS_PER_GRANT, REFRESH_TOKEN_PREFIX,
};
use crate::db::{Db, Row};
use crate::secrets::{new_access_token, token_digest};
use crate::{now_ms, provision, ProvisionError, StoreError};

fn scopes(r: &Row<'_>) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse_list(&r.get::<String>("scopes")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Registers a client for the operator (command line): it belongs to no organization.
pub(crate) async fn create_client<D: Db>(
    db: &D,
    name: &str,
    redirect_uri: Option<&str>,
) -> Result<ClientCredentials, StoreError> {
    insert_client(db, name, redirect_uri, None).await
}

/// Registers a client, of organization `zoid` when an admin registers it in the console.
pub(crate) async fn insert_client<D: Db>(
    db: &D,
    name: &str,
    redirect_uri: Option<&str>,
    zoid: Option<Zoid>,
) -> Result<ClientCredentials, StoreError> {
    let creds = ClientCredentials {
        client_id: new_client_id(),
        client_secret: new_secret(CLIENT_SECRET_PREFIX),
    };
    db.exec(
        "INSERT INTO oauth_clients (client_id, secret_digest, name, redirect_uri, created_ms, zoid) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&creds.client_id, &token_digest(&creds.client_secret), &name, &redirect_uri, &now_ms(), &zoid.map(Zoid::as_i64)],
    )
    .await?;
    Ok(creds)
}

pub(crate) async fn client<D: Db>(
    db: &D,
    client_id: &str,
) -> Result<Option<OAuthClient>, StoreError> {
    db.row(
        "SELECT client_id, name, redirect_uri FROM oauth_clients WHERE client_id = $1",
        &[&client_id],
        |r| {
            Ok(OAuthClient {
                client_id: r.get("client_id")?,
                name: r.get("name")?,
                redirect_uri: r.get("redirect_uri")?,
            })
        },
    )
    .await
}

async fn authenticate_client<D: Db>(
    db: &D,
    client_id: &str,
    secret: &str,
) -> Result<(), OAuthError> {
    let stored = db
        .row(
            "SELECT secret_digest FROM oauth_clients WHERE client_id = $1",
            &[&client_id],
            |r| r.get::<String>("secret_digest"),
        )
        .await?;
    match stored {
        Some(d) if d == token_digest(secret) => Ok(()),
        _ => Err(OAuthError::InvalidClient),
    }
}

async fn revoke_refresh_id<D: Db>(db: &D, id: i64, now: i64) -> Result<(), StoreError> {
    db.exec(
        "UPDATE refresh_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
        &[&now, &id],
    )
    .await?;
    db.exec(
        "UPDATE tokens SET revoked_ms = $1 WHERE refresh_id = $2 AND revoked_ms IS NULL",
        &[&now, &id],
    )
    .await?;
    Ok(())
}

/// A new refresh token; beyond the limit, the oldest live ones of the same user and client
/// are revoked with their access tokens. The user's row is locked so that two nodes
/// issuing at once cannot both stay under the limit. `requested` is the client's scope
/// string, recorded with the grant; only `scopes` ever reaches a token.
async fn insert_refresh<D: Db>(
    db: &D,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
    requested: Option<&str>,
) -> Result<(i64, String), StoreError> {
    let now = now_ms();
    db.lock(
        "SELECT 1 FROM users WHERE zuid = $1 FOR UPDATE",
        &[&zuid.as_i64()],
    )
    .await?;
    let live = db
        .rows(
            "SELECT id FROM refresh_tokens WHERE zuid = $1 AND client_id = $2 AND revoked_ms IS NULL ORDER BY created_ms, id",
            &[&zuid.as_i64(), &client_id],
            |r| r.get::<i64>("id"),
        )
        .await?;
    let excess = (live.len() + 1).saturating_sub(MAX_REFRESH_TOKENS_PER_GRANT);
    for id in &live[..excess] {
        revoke_refresh_id(db, *id, now).await?;
    }
    let token = new_secret(REFRESH_TOKEN_PREFIX);
    let id = db
        .one(
            "INSERT INTO refresh_tokens (digest, client_id, zuid, scopes, requested_scopes, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&token_digest(&token), &client_id, &zuid.as_i64(), &scopes.to_string(), &requested, &now],
            |r| r.get::<i64>("id"),
        )
        .await?;
    Ok((id, token))
}

async fn mint_access<D: Db>(
    db: &D,
    zuid: Zuid,
    scopes: &ScopeSet,
    refresh_id: i64,
    ttl_secs: u64,
) -> Result<String, StoreError> {
    let token = new_access_token();
    let now = now_ms();
    db.exec(
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms, refresh_id) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&token_digest(&token), &zuid.as_i64(), &scopes.to_string(), &now, &(now + (ttl_secs as i64) * 1000), &refresh_id],
    )
    .await?;
    Ok(token)
}

/// `mailplane oauth grant`: a refresh token for a user, without the browser.
pub(crate) async fn grant<D: Db>(
    db: &D,
    client_id: &str,
    zuid: Zuid,
    request: &ScopeRequest,
) -> Result<String, ProvisionError> {
    if client(db, client_id).await?.is_none() {
        return Err(ProvisionError::Refused(format!(
            "no OAuth client has the id {client_id}"
        )));
    }
    if !db
        .exists("SELECT 1 FROM users WHERE zuid = $1", &[&zuid.as_i64()])
        .await?
    {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    let (_, token) =
        insert_refresh(db, client_id, zuid, request.served(), Some(request.asked())).await?;
    Ok(token)
}

pub(crate) async fn credentials<D: Db>(
    db: &D,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    db.row(
        "SELECT u.zuid, u.password_hash, u.expires_ms FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         JOIN users u ON u.zuid = a.zuid WHERE d.address = $1",
        &[&email],
        |r| {
            Ok(Credentials {
                zuid: Zuid::from_db(r.get("zuid")?),
                password_hash: r.get("password_hash")?,
                expires_ms: r.get("expires_ms")?,
            })
        },
    )
    .await
}

pub(crate) async fn issue_code<D: Db>(
    db: &D,
    client_id: &str,
    zuid: Zuid,
    request: &ScopeRequest,
    redirect_uri: &str,
    pkce: Option<&CodeChallenge>,
) -> Result<String, StoreError> {
    let code = new_secret(AUTH_CODE_PREFIX);
    db.exec(
        "INSERT INTO auth_codes (digest, client_id, zuid, scopes, requested_scopes, redirect_uri, expires_ms, pkce_method, pkce_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &token_digest(&code),
            &client_id,
            &zuid.as_i64(),
            &request.served().to_string(),
            &request.asked(),
            &redirect_uri,
            &(now_ms() + AUTH_CODE_TTL_MS),
            &pkce.map(|p| p.method),
            &pkce.map(|p| p.digest.as_str()),
        ],
    )
    .await?;
    Ok(code)
}

pub(crate) async fn pending_code<D: Db>(
    db: &D,
    code: &str,
) -> Result<Option<PendingCode>, StoreError> {
    db.row(
        "SELECT k.client_id, o.name, o.redirect_uri AS client_redirect_uri, k.zuid, k.scopes, \
                k.redirect_uri AS code_redirect_uri \
         FROM auth_codes k JOIN oauth_clients o ON o.client_id = k.client_id \
         WHERE k.digest = $1 AND k.expires_ms > $2 AND k.used_ms IS NULL AND NOT k.approved",
        &[&token_digest(code), &now_ms()],
        |r| {
            Ok(PendingCode {
                client: OAuthClient {
                    client_id: r.get("client_id")?,
                    name: r.get("name")?,
                    redirect_uri: r.get("client_redirect_uri")?,
                },
                zuid: Zuid::from_db(r.get("zuid")?),
                scopes: scopes(r)?,
                redirect_uri: r.get("code_redirect_uri")?,
            })
        },
    )
    .await
}

/// Records consent (the code may be exchanged) or refusal (the code is spent).
pub(crate) async fn decide_code<D: Db>(
    db: &D,
    code: &str,
    approve: bool,
) -> Result<Option<String>, StoreError> {
    let sql = if approve {
        "UPDATE auth_codes SET approved = TRUE WHERE digest = $1 AND expires_ms > $2 AND used_ms IS NULL AND NOT approved RETURNING redirect_uri"
    } else {
        "UPDATE auth_codes SET used_ms = $2 WHERE digest = $1 AND expires_ms > $2 AND used_ms IS NULL AND NOT approved RETURNING redirect_uri"
    };
    db.row(sql, &[&token_digest(code), &now_ms()], |r| {
        r.get("redirect_uri")
    })
    .await
}

pub(crate) async fn exchange_code<D: Db>(
    db: &D,
    client_id: &str,
    secret: &str,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    ttl_secs: u64,
) -> Result<Exchange, OAuthError> {
    authenticate_client(db, client_id, secret).await?;
    // Spent in the same statement that finds it: two nodes cannot both exchange it.
    let (zuid, scopes, requested, issued_for, pkce) = db
        .row(
            "UPDATE auth_codes SET used_ms = $3 WHERE digest = $1 AND client_id = $2 AND approved AND used_ms IS NULL \
             AND expires_ms > $3 RETURNING zuid, scopes, requested_scopes, redirect_uri, pkce_digest",
            &[&token_digest(code), &client_id, &now_ms()],
            |r| {
                Ok((
                    Zuid::from_db(r.get("zuid")?),
                    scopes(r)?,
                    r.get::<Option<String>>("requested_scopes")?,
                    r.get::<String>("redirect_uri")?,
                    r.get::<Option<String>>("pkce_digest")?,
                ))
            },
        )
        .await?
        .ok_or(OAuthError::InvalidCode)?;
    if redirect_uri.is_some_and(|u| u != issued_for) {
        return Err(OAuthError::InvalidRedirectUri);
    }
    if !pkce_satisfied(pkce.as_deref(), code_verifier) {
        return Ok(Exchange::SpentOnPkce);
    }
    let (refresh_id, refresh_token) =
        insert_refresh(db, client_id, zuid, &scopes, requested.as_deref()).await?;
    let access_token = mint_access(db, zuid, &scopes, refresh_id, ttl_secs).await?;
    Ok(Exchange::Tokens(IssuedTokens {
        access_token,
        refresh_token: Some(refresh_token),
        scopes,
        expires_in_secs: ttl_secs,
    }))
}

pub(crate) async fn refresh<D: Db>(
    db: &D,
    client_id: &str,
    secret: &str,
    refresh_token: &str,
    ttl_secs: u64,
) -> Result<IssuedTokens, OAuthError> {
    authenticate_client(db, client_id, secret).await?;
    let (id, zuid, scopes) = db
        .row(
            "SELECT r.id, r.zuid, r.scopes, u.expires_ms FROM refresh_tokens r JOIN users u ON u.zuid = r.zuid \
             WHERE r.digest = $1 AND r.client_id = $2 AND r.revoked_ms IS NULL",
            &[&token_digest(refresh_token), &client_id],
            |r| {
                let expired = is_expired(r.get("expires_ms")?, now_ms());
                Ok((!expired).then_some((
                    r.get::<i64>("id")?,
                    Zuid::from_db(r.get("zuid")?),
                    scopes(r)?,
                )))
            },
        )
        .await?
        .flatten()
        // An expired user's refresh tokens mint nothing more (`userExpiry`).
        .ok_or(OAuthError::InvalidCode)?;
    // The grant's scopes exactly: a refresh never widens them.
    let access_token = mint_access(db, zuid, &scopes, id, ttl_secs).await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token: None,
        scopes,
        expires_in_secs: ttl_secs,
    })
}

/// Revokes a refresh token (and its access tokens) or an access token.
pub(crate) async fn revoke<D: Db>(db: &D, token: &str) -> Result<bool, StoreError> {
    let digest = token_digest(token);
    let refresh = db
        .row(
            "SELECT id FROM refresh_tokens WHERE digest = $1 AND revoked_ms IS NULL",
            &[&digest],
            |r| r.get::<i64>("id"),
        )
        .await?;
    match refresh {
        Some(id) => {
            revoke_refresh_id(db, id, now_ms()).await?;
            Ok(true)
        }
        None => provision::revoke_token(db, &digest).await,
    }
}
