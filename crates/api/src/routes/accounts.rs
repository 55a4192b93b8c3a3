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
    Access, AccountCommand, AccountId, EmailAddress, ForwardKey, IdentityKey, Mode, NewIdentity,
    PasswordHash, PasswordReset, PathId, Zoid, Zuid,
};
use mailplane_store::{secrets, Caller, GrantKind, RequestMeta, UpdateTarget};

use super::{body, path_id, success, success_with, Segments};
use crate::command::{parse_update, KeysToMail, NewPassword, UpdateBody};
use crate::error::ApiError;
use crate::key_mail::{KeyMail, KeyPurpose, NO_MAIL_SUBMIT};
use crate::metrics::ModeLabel;
use crate::{auth, lenient, view, AppState};

/// The id in the path of an update. What it names is the mode's to say (its table entry's
/// `path`): an account, or for some admin modes a user, as Zoho's pages have it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathNumber(pub(crate) u64);

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

pub(crate) async fn update(
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
    // Refusals keep their order: nothing is prepared (a slot taken, a key made) for a
    // caller whose token, scope and role do not allow the update; the store checks them
    // again in the change's transaction.
    let allowed = async {
        auth::authenticate(&state.store, headers)
            .await?
            .grant(kind, Access::Update)
            .map_err(ApiError::from)
    };
    // Keys to mail once the change commits, with the slot to mail them in.
    let mut to_mail = None;
    // A slot to check a relay in once the change commits (`verifysendmaildetails`).
    let mut check = None;
    let command = match request.body {
        UpdateBody::Command(AccountCommand::AddSendMailDetails(ids))
            if ids.iter().any(NewIdentity::is_claim) =>
        {
            allowed.await?;
            let (ids, mail) = keyed_identities(state, ids)?;
            to_mail = Some(mail);
            AccountCommand::AddSendMailDetails(ids)
        }
        UpdateBody::Command(cmd @ AccountCommand::VerifySendMailDetails { key: None, .. }) => {
            allowed.await?;
            check = Some(
                state
                    .relay_checks
                    .slot()
                    .ok_or(ApiError::Busy(CHECK_BUSY_RETRY_AFTER_SECS))?,
            );
            cmd
        }
        UpdateBody::Command(command) => command,
        UpdateBody::KeysToMail(keys) => {
            allowed.await?;
            let (command, mail) = forward_keys(state, keys)?;
            to_mail = Some(ToMail::Keys(mail));
            command
        }
        UpdateBody::ResetPassword(new) => {
            // argon2 is slow on purpose: a hash is computed only for a caller whose
            // token, scope and role allow the update.
            allowed.await?;
            hashed(state, new).await?
        }
    };
    let verified = match &command {
        AccountCommand::VerifySendMailDetails { id, .. } => Some(*id),
        _ => None,
    };
    let adds_relay = matches!(&command, AccountCommand::AddSendMailDetails(ids) if ids.iter().any(NewIdentity::has_relay));
    // The store checks the token in the change's own transaction.
    let mut updated = state
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
    if adds_relay {
        state.relay_checks.wake();
    }
    if let (Some(slot), Some(id), UpdateTarget::Account(account)) = (check, verified, target) {
        // The relay is checked now and the answer shows the outcome.
        if state.relay_checks.check_now(slot, account, id).await? {
            updated.identities = Some(state.store.identities(account).await?);
        }
    }
    let mailed = match (to_mail, &updated.account_address) {
        (Some(ToMail::Keys(mail)), Some(account)) if mode == Mode::AddSendMailDetails => {
            mail.send(account, Some(&updated.keyed)).await
        }
        (Some(ToMail::Keys(mail)), Some(account)) => mail.send(account, None).await,
        // Nothing could be mailed: said of each identity that still awaits its owner.
        (Some(ToMail::Nowhere(claims)), _) => {
            let awaiting = |to: &EmailAddress| {
                updated.identities.iter().flatten().any(|i| {
                    &i.from_address == to && i.is_claim() && !i.verification.owner_confirmed
                })
            };
            claims
                .into_iter()
                .filter(|to| awaiting(to))
                .map(|to| (to, format!("not sent: {NO_MAIL_SUBMIT}")))
                .collect()
        }
        _ => Vec::new(),
    };
    let mut resp = match (
        &updated.identities,
        &updated.added_addresses,
        &updated.forwards,
    ) {
        (Some(identities), _, _) => success_with(view::identities_after(identities, &mailed)),
        (None, Some(added), _) => success_with(view::added_addresses(added)),
        (None, None, Some(forwards)) => success_with(view::forwards_after(
            forwards,
            updated.account_address.as_ref(),
            &mailed,
        )),
        (None, None, None) => success(),
    };
    resp.extensions_mut().insert(ModeLabel(mode.as_str()));
    Ok(resp)
}

/// The confirmation mail of a change.
enum ToMail {
    /// Keys made, to mail once the change commits.
    Keys(KeyMail),
    /// The addresses that needed a key, with nowhere to mail one.
    Nowhere(Vec<EmailAddress>),
}

/// Seconds a client is asked to wait when every relay check slot is taken.
const CHECK_BUSY_RETRY_AFTER_SECS: u64 = 5;

/// `addsendmaildetails` with identities for addresses outside the account: a key for
/// each, to mail once the change commits. Without `--mail-submit` no key is made (the
/// answer says so, and an admin can still confirm the organization's own domains).
fn keyed_identities(
    state: &AppState,
    ids: Vec<NewIdentity>,
) -> Result<(Vec<NewIdentity>, ToMail), ApiError> {
    let claims: Vec<EmailAddress> = ids
        .iter()
        .filter(|i| i.is_claim())
        .filter_map(|i| i.from_address().cloned())
        .collect();
    let Some(mail) = KeyMail::make(
        state.mail_submit.as_ref(),
        KeyPurpose::SendAs,
        claims.clone(),
    )?
    else {
        return Ok((ids, ToMail::Nowhere(claims)));
    };
    let now_ms = mailplane_store::now_ms();
    let digests: Vec<(EmailAddress, String)> =
        mail.digests().map(|(to, d)| (to.clone(), d)).collect();
    let ids = ids
        .into_iter()
        .map(
            |i| match digests.iter().find(|(to, _)| Some(to) == i.from_address()) {
                Some((_, digest)) => i.with_key(IdentityKey {
                    digest: digest.clone(),
                    now_ms,
                }),
                None => i,
            },
        )
        .collect();
    Ok((ids, ToMail::Keys(mail)))
}

/// The command of `addMailForward` or `resendMailForwardVerficationMail`: a new key for
/// each target. A forward exists only to be confirmed: with nowhere to mail, nothing
/// changes.
fn forward_keys(
    state: &AppState,
    KeysToMail { resend, targets }: KeysToMail,
) -> Result<(AccountCommand, KeyMail), ApiError> {
    let mail = KeyMail::make(state.mail_submit.as_ref(), KeyPurpose::Forward, targets)?
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "mailForward: a forward is confirmed with a key mailed to its target, and {NO_MAIL_SUBMIT}"
            ))
        })?;
    let keys = mail
        .digests()
        .map(|(to, digest)| ForwardKey {
            to: to.clone(),
            digest,
        })
        .collect();
    let now_ms = mailplane_store::now_ms();
    let command = if resend {
        AccountCommand::ResendMailForward { keys, now_ms }
    } else {
        AccountCommand::AddMailForward { keys, now_ms }
    };
    Ok((command, mail))
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
