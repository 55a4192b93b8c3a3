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
    Access, AccountCommand, AccountId, EmailAddress, ForwardKey, PasswordHash, PasswordReset,
    PathId, Secret, Zoid, Zuid, FORWARD_KEY_TTL_MS,
};
use mailplane_outbound::{Message, Slot, Submitter};
use mailplane_store::{secrets, Caller, GrantKind, RequestMeta, UpdateTarget};

use super::{body, path_id, success, success_with, Segments};
use crate::command::{parse_update, KeysToMail, NewPassword, UpdateBody};
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
    // Keys to mail once the change commits, with the slot to mail them in.
    let mut to_mail = None;
    let command = match request.body {
        UpdateBody::Command(command) => command,
        UpdateBody::KeysToMail(keys) => {
            auth::authenticate(&state.store, headers)
                .await?
                .grant(kind, Access::Update)?;
            let (command, mail) = keys_to_mail(state, keys)?;
            to_mail = Some(mail);
            command
        }
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
    let mailed = match (to_mail, &updated.account_address) {
        (Some(mail), Some(account)) => mail.send(account).await,
        _ => Vec::new(),
    };
    let mut resp = match (
        &updated.identities,
        &updated.added_addresses,
        &updated.forwards,
    ) {
        (Some(identities), _, _) => success_with(view::identities(identities)),
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

/// The confirmation keys of a forwarding change, to mail once it commits.
struct KeyMail {
    submitter: Submitter,
    slot: Slot,
    keys: Vec<(EmailAddress, Secret)>,
}

/// The command of `addMailForward` or `resendMailForwardVerficationMail`: a new key for
/// each target (120 bits, random), of which the command carries the digest only. A slot
/// to mail them is taken first: with none free, or nowhere to mail, nothing changes.
fn keys_to_mail(
    state: &AppState,
    KeysToMail { resend, targets }: KeysToMail,
) -> Result<(AccountCommand, KeyMail), ApiError> {
    let submitter = state.mail_submit.clone().ok_or_else(|| {
        ApiError::Invalid(
            "mailForward: a forward is confirmed with a key mailed to its target, and this server has nowhere to hand mail (serve --mail-submit is not set); ask its operator".into(),
        )
    })?;
    let slot = submitter
        .slot()
        .ok_or(ApiError::Busy(MAIL_BUSY_RETRY_AFTER_SECS))?;
    let keys: Vec<(EmailAddress, Secret)> = targets
        .into_iter()
        .map(|to| (to, Secret::new(secrets::new_password())))
        .collect();
    let digests = keys
        .iter()
        .map(|(to, key)| ForwardKey {
            to: to.clone(),
            digest: secrets::token_digest(key.expose()),
        })
        .collect();
    let now_ms = mailplane_store::now_ms();
    let command = if resend {
        AccountCommand::ResendMailForward {
            keys: digests,
            now_ms,
        }
    } else {
        AccountCommand::AddMailForward {
            keys: digests,
            now_ms,
        }
    };
    Ok((
        command,
        KeyMail {
            submitter,
            slot,
            keys,
        },
    ))
}

/// Seconds a client is asked to wait when every mail slot is taken.
const MAIL_BUSY_RETRY_AFTER_SECS: u64 = 5;

impl KeyMail {
    /// Mails each key to its target, in the slot taken before the change. The change has
    /// committed: a message that cannot be handed over is reported in the answer (the
    /// client can ask for a new key), never as a failure of the request. All of it within
    /// one step timeout, so the answer never waits on the mail server past the request's
    /// own limit.
    async fn send(self, account: &EmailAddress) -> Vec<(EmailAddress, String)> {
        let KeyMail {
            submitter,
            slot,
            keys,
        } = self;
        let Some(from) = submitter.from_for(account) else {
            return keys
                .into_iter()
                .map(|(to, _)| (to, "not sent: no From address".to_string()))
                .collect();
        };
        let budget = submitter.step_timeout();
        let deadline = tokio::time::Instant::now() + budget;
        let mut outcomes = Vec::new();
        for (to, key) in keys {
            let message = confirmation(account, &to, &key, from.clone());
            let outcome =
                match tokio::time::timeout_at(deadline, submitter.send(&slot, &to, &message)).await
                {
                    Ok(Ok(())) => "sent".to_string(),
                    Ok(Err(e)) => format!("not sent: {e}"),
                    Err(_) => format!("not sent: the mail server took longer than {budget:?}"),
                };
            outcomes.push((to, outcome));
        }
        outcomes
    }
}

/// The message that carries a forward's key: who asks, and the key on a line of its own.
fn confirmation(
    account: &EmailAddress,
    to: &EmailAddress,
    key: &Secret,
    from: EmailAddress,
) -> Message {
    let days = FORWARD_KEY_TTL_MS / (24 * 60 * 60 * 1000);
    Message {
        from,
        subject: format!("Confirm forwarding of {account}'s mail to you"),
        body: vec![
            format!("The mail account {account} asks that its incoming mail be forwarded to {to}."),
            String::new(),
            format!(
                "If you want this mail, give the confirmation key below to {account} (or to its mail administrator); it is valid for {days} days:"
            ),
            String::new(),
            key.expose().to_string(),
            String::new(),
            "If you do not, ignore this message: nothing is forwarded to you until the key is given back.".into(),
        ],
    }
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
