//! `PUT /api/accounts/{accountId}`, `PUT /api/organization/{zoid}/accounts/{accountId}`
//! (the account update endpoint, all modes) and the user's reads `GET /api/accounts`,
//! `GET /api/accounts/{accountId}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use mailplane_domain::{
    Access, AccountCommand, AccountId, PasswordHash, PasswordReset, PathId, Zoid, Zuid,
};
use mailplane_store::{secrets, Caller, GrantKind, RequestMeta, UpdateTarget};

use super::{body, path_id, success, success_with, Segments};
use crate::command::{parse_update, NewPassword, UpdateBody};
use crate::error::ApiError;
use crate::metrics::ModeLabel;
use crate::{auth, lenient, view, AppState};

/// The id in the path of an update. What it names is the mode's to say (its table entry's
/// `path`): an account, or for some admin modes a user, as Zoho's pages have it.
#[derive(Debug, Clone, Copy)]
struct PathNumber(u64);

impl std::str::FromStr for PathNumber {
    type Err = mailplane_domain::IdError;
    /// A positive integer that fits the database, as every id is.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<AccountId>().map(|id| PathNumber(id.get()))
    }
}

impl PathNumber {
    fn target(self, path: PathId) -> Result<UpdateTarget, ApiError> {
        // The bounds of every id type are the same: a number the parser took is one.
        Ok(match path {
            PathId::AccountId => UpdateTarget::Account(
                AccountId::new(self.0).map_err(|_| ApiError::UrlNotConfigured)?,
            ),
            PathId::Zuid => UpdateTarget::HostedAccountOf(
                Zuid::new(self.0).map_err(|_| ApiError::UrlNotConfigured)?,
            ),
        })
    }
}

/// Zoho: the five seed pages, user authentication form.
pub async fn update_own(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Segments(account): Segments<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let account = path_id(&account)?;
    update(&state, &meta, &headers, GrantKind::User, None, account, raw).await
}

/// Zoho: the five seed pages, admin authentication form; and Zoho's Add Email Alias,
/// Delete Email Alias and Reset Password (admin only), whose path names the user's zuid.
pub async fn update_in_org(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Segments((zoid, account)): Segments<(String, String)>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (zoid, account) = (path_id::<Zoid>(&zoid)?, path_id(&account)?);
    update(
        &state,
        &meta,
        &headers,
        GrantKind::Admin,
        Some(zoid),
        account,
        raw,
    )
    .await
}

async fn update(
    state: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    kind: GrantKind,
    zoid: Option<Zoid>,
    path_id: PathNumber,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let token = auth::token(headers)?;
    let parsed = body(raw)
        .and_then(|b| lenient::parse_object(&b))
        .and_then(|object| parse_update(&object, kind, state.relay_policy));
    let request = match parsed {
        Ok(request) => request,
        // Refusals keep their order: a bad token or a missing scope is answered before a
        // bad body.
        Err(e) => {
            auth::authenticate(&state.store, headers)
                .await?
                .grant(kind, Access::Update)?;
            return Err(e);
        }
    };
    let mode = request.body.mode();
    let target = path_id.target(mode.spec().path)?;
    let command = match request.body {
        UpdateBody::Command(command) => command,
        UpdateBody::ResetPassword(new) => {
            // argon2 is slow on purpose: a hash is computed only for a caller whose
            // token, scope and role allow the update (the store checks them again in the
            // change's transaction).
            auth::authenticate(&state.store, headers)
                .await?
                .grant(kind, Access::Update)?;
            hashed(state, new).await?
        }
    };
    // The store checks the token in the change's own transaction.
    let updated = state
        .store
        .apply(
            Caller { token, kind },
            meta,
            zoid,
            target,
            request.zuid,
            command,
        )
        .await?;
    let mut resp = match (&updated.identities, &updated.added_addresses) {
        (Some(identities), _) => success_with(view::identities(identities)),
        (None, Some(added)) => success_with(view::added_addresses(added)),
        (None, None) => success(),
    };
    resp.extensions_mut().insert(ModeLabel(mode.as_str()));
    Ok(resp)
}

/// `resetPassword`'s command: the password hashed (argon2id) in one of the bounded slots,
/// off the async runtime and outside the write lock, as for a new user. The password is
/// dropped (and wiped) here; only its hash goes on.
async fn hashed(state: &AppState, new: NewPassword) -> Result<AccountCommand, ApiError> {
    let NewPassword {
        password,
        revoke_tokens,
        one_time,
    } = new;
    let phc = state
        .password_work
        .run(move || secrets::hash_password(password.expose()))
        .await??;
    let hash = PasswordHash::from_phc(phc)
        .ok_or_else(|| ApiError::Internal("the password hash is not an argon2id one".into()))?;
    Ok(AccountCommand::ResetPassword(PasswordReset {
        hash,
        revoke_tokens,
        one_time,
    }))
}

/// Zoho: Get All User Accounts.
pub async fn list_own(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let grant = auth::authenticate(&state.store, &headers)
        .await?
        .user_grant(Access::Read)?;
    let accounts = state.store.own_accounts(&grant).await?;
    Ok(success_with(
        accounts
            .iter()
            .map(|a| view::account(a, &state.public_url))
            .collect::<Vec<_>>(),
    ))
}

/// Zoho: Get User Account Details.
pub async fn get_own(
    State(state): State<AppState>,
    Segments(account): Segments<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account: AccountId = path_id(&account)?;
    let token = auth::token(&headers)?;
    let caller = Caller {
        token,
        kind: GrantKind::User,
    };
    let found = state.store.account(caller, account).await?;
    let a =
        found.ok_or_else(|| ApiError::NotFound(format!("accountId {account} was not found")))?;
    Ok(success_with(view::account(&a, &state.public_url)))
}
