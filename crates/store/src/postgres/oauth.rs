//! OAuth clients, codes and refresh tokens on PostgreSQL.

use deadpool_postgres::{GenericClient, Transaction};
use mailplane_domain::{ScopeSet, Zuid};

use super::{exec, one, row_opt, rows};
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

pub(super) async fn create_client(
    tx: &Transaction<'_>,
    name: &str,
    redirect_uri: Option<&str>,
) -> Result<ClientCredentials, StoreError> {
    let creds = ClientCredentials {
        client_id: new_client_id(),
        client_secret: new_secret(CLIENT_SECRET_PREFIX),
    };
    exec(
        tx,
        "INSERT INTO oauth_clients (client_id, secret_digest, name, redirect_uri, created_ms) VALUES ($1, $2, $3, $4, $5)",
        &[&creds.client_id, &token_digest(&creds.client_secret), &name, &redirect_uri, &now_ms()],
    )
    .await?;
    Ok(creds)
}

pub(super) async fn client<C: GenericClient>(
    c: &C,
    client_id: &str,
) -> Result<Option<OAuthClient>, StoreError> {
    let row = row_opt(
        c,
        "SELECT client_id, name, redirect_uri FROM oauth_clients WHERE client_id = $1",
        &[&client_id],
    )
    .await?;
    row.map(|r| {
        Ok(OAuthClient {
            client_id: r.try_get(0)?,
            name: r.try_get(1)?,
            redirect_uri: r.try_get(2)?,
        })
    })
    .transpose()
}

async fn authenticate_client(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
) -> Result<(), OAuthError> {
    let row = row_opt(
        tx,
        "SELECT secret_digest FROM oauth_clients WHERE client_id = $1",
        &[&client_id],
    )
    .await?;
    match row.map(|r| r.get::<_, String>(0)) {
        Some(d) if d == token_digest(secret) => Ok(()),
        _ => Err(OAuthError::InvalidClient),
    }
}

async fn revoke_refresh_id(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE refresh_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL",
        &[&now, &id],
    )
    .await?;
    exec(
        tx,
        "UPDATE tokens SET revoked_ms = $1 WHERE refresh_id = $2 AND revoked_ms IS NULL",
        &[&now, &id],
    )
    .await?;
    Ok(())
}

/// A new refresh token; beyond the limit, the oldest live ones of the same user and client
/// are revoked with their access tokens. The user's row is locked so that two nodes
/// issuing at once cannot both stay under the limit.
async fn insert_refresh(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
) -> Result<(i64, String), StoreError> {
    let now = now_ms();
    exec(
        tx,
        "SELECT 1 FROM users WHERE zuid = $1 FOR UPDATE",
        &[&zuid.as_i64()],
    )
    .await?;
    let live: Vec<i64> = rows(
        tx,
        "SELECT id FROM refresh_tokens WHERE zuid = $1 AND client_id = $2 AND revoked_ms IS NULL ORDER BY created_ms, id",
        &[&zuid.as_i64(), &client_id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let excess = (live.len() + 1).saturating_sub(MAX_REFRESH_TOKENS_PER_GRANT);
    for id in &live[..excess] {
        revoke_refresh_id(tx, *id, now).await?;
    }
    let token = new_secret(REFRESH_TOKEN_PREFIX);
    let r = one(
        tx,
        "INSERT INTO refresh_tokens (digest, client_id, zuid, scopes, created_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&token_digest(&token), &client_id, &zuid.as_i64(), &scopes.to_string(), &now],
    )
    .await?;
    Ok((r.try_get(0)?, token))
}

async fn mint_access(
    tx: &Transaction<'_>,
    zuid: Zuid,
    scopes: &ScopeSet,
    refresh_id: i64,
    ttl_secs: u64,
) -> Result<String, StoreError> {
    let token = new_access_token();
    let now = now_ms();
    exec(
        tx,
        "INSERT INTO tokens (digest, zuid, scopes, created_ms, expires_ms, refresh_id) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&token_digest(&token), &zuid.as_i64(), &scopes.to_string(), &now, &(now + (ttl_secs as i64) * 1000), &refresh_id],
    )
    .await?;
    Ok(token)
}

pub(super) async fn grant(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
) -> Result<String, ProvisionError> {
    if client(tx, client_id).await?.is_none() {
        return Err(ProvisionError::Refused(format!(
            "no OAuth client has the id {client_id}"
        )));
    }
    if row_opt(tx, "SELECT 1 FROM users WHERE zuid = $1", &[&zuid.as_i64()])
        .await?
        .is_none()
    {
        return Err(ProvisionError::Refused(format!("no user has zuid {zuid}")));
    }
    Ok(insert_refresh(tx, client_id, zuid, scopes).await?.1)
}

pub(super) async fn credentials<C: GenericClient>(
    c: &C,
    email: &str,
) -> Result<Option<Credentials>, StoreError> {
    let row = row_opt(
        c,
        "SELECT u.zuid, u.password_hash FROM addresses d JOIN accounts a ON a.account_id = d.account_id \
         JOIN users u ON u.zuid = a.zuid WHERE d.address = $1",
        &[&email],
    )
    .await?;
    row.map(|r| {
        Ok(Credentials {
            zuid: Zuid::from_db(r.try_get(0)?),
            password_hash: r.try_get(1)?,
        })
    })
    .transpose()
}

pub(super) async fn issue_code(
    tx: &Transaction<'_>,
    client_id: &str,
    zuid: Zuid,
    scopes: &ScopeSet,
    redirect_uri: &str,
    pkce: Option<&CodeChallenge>,
) -> Result<String, StoreError> {
    let code = new_secret(AUTH_CODE_PREFIX);
    exec(
        tx,
        "INSERT INTO auth_codes (digest, client_id, zuid, scopes, redirect_uri, expires_ms, pkce_method, pkce_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &token_digest(&code),
            &client_id,
            &zuid.as_i64(),
            &scopes.to_string(),
            &redirect_uri,
            &(now_ms() + AUTH_CODE_TTL_MS),
            &pkce.map(|p| p.method),
            &pkce.map(|p| p.digest.as_str()),
        ],
    )
    .await?;
    Ok(code)
}

pub(super) async fn pending_code<C: GenericClient>(
    c: &C,
    code: &str,
) -> Result<Option<PendingCode>, StoreError> {
    let row = row_opt(
        c,
        "SELECT k.client_id, o.name, o.redirect_uri, k.zuid, k.scopes, k.redirect_uri FROM auth_codes k \
         JOIN oauth_clients o ON o.client_id = k.client_id \
         WHERE k.digest = $1 AND k.expires_ms > $2 AND k.used_ms IS NULL AND NOT k.approved",
        &[&token_digest(code), &now_ms()],
    )
    .await?;
    row.map(|r| {
        Ok(PendingCode {
            client: OAuthClient {
                client_id: r.try_get(0)?,
                name: r.try_get(1)?,
                redirect_uri: r.try_get(2)?,
            },
            zuid: Zuid::from_db(r.try_get(3)?),
            scopes: scopes(r.try_get(4)?)?,
            redirect_uri: r.try_get(5)?,
        })
    })
    .transpose()
}

pub(super) async fn decide_code(
    tx: &Transaction<'_>,
    code: &str,
    approve: bool,
) -> Result<Option<String>, StoreError> {
    let digest = token_digest(code);
    let sql = if approve {
        "UPDATE auth_codes SET approved = TRUE WHERE digest = $1 AND expires_ms > $2 AND used_ms IS NULL AND NOT approved RETURNING redirect_uri"
    } else {
        "UPDATE auth_codes SET used_ms = $2 WHERE digest = $1 AND expires_ms > $2 AND used_ms IS NULL AND NOT approved RETURNING redirect_uri"
    };
    let row = row_opt(tx, sql, &[&digest, &now_ms()]).await?;
    Ok(row.map(|r| r.get(0)))
}

pub(super) async fn exchange_code(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    ttl_secs: u64,
) -> Result<Exchange, OAuthError> {
    authenticate_client(tx, client_id, secret).await?;
    // Spent in the same statement that finds it: two nodes cannot both exchange it.
    let row = row_opt(
        tx,
        "UPDATE auth_codes SET used_ms = $3 WHERE digest = $1 AND client_id = $2 AND approved AND used_ms IS NULL \
         AND expires_ms > $3 RETURNING zuid, scopes, redirect_uri, pkce_digest",
        &[&token_digest(code), &client_id, &now_ms()],
    )
    .await?;
    let r = row.ok_or(OAuthError::InvalidCode)?;
    let issued_for: String = r.try_get(2).map_err(StoreError::from)?;
    if redirect_uri.is_some_and(|u| u != issued_for) {
        return Err(OAuthError::InvalidRedirectUri);
    }
    let pkce: Option<String> = r.try_get(3).map_err(StoreError::from)?;
    if !pkce_satisfied(pkce.as_deref(), code_verifier) {
        return Ok(Exchange::SpentOnPkce);
    }
    let zuid = Zuid::from_db(r.try_get(0).map_err(StoreError::from)?);
    let scopes = scopes(r.try_get(1).map_err(StoreError::from)?)?;
    let (refresh_id, refresh_token) = insert_refresh(tx, client_id, zuid, &scopes).await?;
    let access_token = mint_access(tx, zuid, &scopes, refresh_id, ttl_secs).await?;
    Ok(Exchange::Tokens(IssuedTokens {
        access_token,
        refresh_token: Some(refresh_token),
        scopes,
        expires_in_secs: ttl_secs,
    }))
}

pub(super) async fn refresh(
    tx: &Transaction<'_>,
    client_id: &str,
    secret: &str,
    refresh_token: &str,
    ttl_secs: u64,
) -> Result<IssuedTokens, OAuthError> {
    authenticate_client(tx, client_id, secret).await?;
    let row = row_opt(
        tx,
        "SELECT id, zuid, scopes FROM refresh_tokens WHERE digest = $1 AND client_id = $2 AND revoked_ms IS NULL",
        &[&token_digest(refresh_token), &client_id],
    )
    .await?;
    let r = row.ok_or(OAuthError::InvalidCode)?;
    let id: i64 = r.try_get(0).map_err(StoreError::from)?;
    let zuid = Zuid::from_db(r.try_get(1).map_err(StoreError::from)?);
    // The grant's scopes exactly: a refresh never widens them.
    let scopes = scopes(r.try_get(2).map_err(StoreError::from)?)?;
    let access_token = mint_access(tx, zuid, &scopes, id, ttl_secs).await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token: None,
        scopes,
        expires_in_secs: ttl_secs,
    })
}

pub(super) async fn revoke(tx: &Transaction<'_>, token: &str) -> Result<bool, StoreError> {
    let digest = token_digest(token);
    match row_opt(
        tx,
        "SELECT id FROM refresh_tokens WHERE digest = $1 AND revoked_ms IS NULL",
        &[&digest],
    )
    .await?
    {
        Some(r) => {
            revoke_refresh_id(tx, r.get(0), now_ms()).await?;
            Ok(true)
        }
        None => super::provision::revoke_token(tx, &digest).await,
    }
}
