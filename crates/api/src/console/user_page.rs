//! A user's page: their accounts (addresses, status, send-as identities, order), the
//! admin's password form, and the history of changes; and the posts of its forms.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use mailplane_domain::{Access, AccountKind, Identity, IdentityMode, Zuid};
use mailplane_store::{AccountView, Caller, Grant, GrantKind, RequestMeta};
use serde::Deserialize;

use super::account_forms::{self, CardForm, Operation, IDENTITY_FIELDS};
use super::form::Form;
use super::render::{self, ChangeRow, Nav};
use super::session::{self, Session};
use crate::error::ApiError;
use crate::routes::accounts::{self as api_accounts, PathNumber};
use crate::routes::Segments;
use crate::AppState;

/// How many changes the page lists.
const HISTORY_ROWS: u32 = 25;

#[derive(Deserialize, Default)]
pub(crate) struct Done {
    #[serde(default)]
    done: String,
}

/// A form that was refused: where, what, and the values to show again (never a password).
struct Failed {
    account: String,
    form: CardForm,
    field: Option<&'static str>,
    message: String,
    values: Vec<(String, String)>,
}

pub(crate) struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
}

pub(crate) struct UserHead {
    zuid: u64,
    name: String,
    address: String,
    role: &'static str,
}

pub(crate) struct IdentityRow {
    id: String,
    from: String,
    name: String,
    mode: &'static str,
    relay: String,
    state: &'static str,
    state_class: &'static str,
    why: Option<String>,
    /// An address outside the account whose owner has not confirmed it.
    needs_key: bool,
    /// An `extfrom` relay that can be checked now.
    checkable: bool,
}

pub(crate) struct AccountCard {
    id: String,
    title: String,
    hosted: bool,
    addresses: Vec<(String, bool)>,
    enabled: bool,
    outgoing_blocked: bool,
    incoming_blocked: bool,
    status: &'static str,
    status_class: &'static str,
    position: usize,
    identities: Vec<IdentityRow>,
    failed: Option<std::sync::Arc<Failed>>,
}

impl AccountCard {
    fn failed_in(&self, form: &str) -> Option<&Failed> {
        self.failed.as_deref().filter(|f| f.form.name() == form)
    }

    /// The refusal to show at `field` of `form` (`""`: the form's own line).
    pub fn error(&self, form: &str, field: &str) -> Option<&str> {
        self.failed_in(form)
            .filter(|f| f.field.unwrap_or_default() == field)
            .map(|f| f.message.as_str())
    }

    pub fn has_errors(&self, form: &str) -> bool {
        self.failed_in(form).is_some()
    }

    /// What the primary address field shows: the address refused, or the current one.
    pub fn primary_value(&self) -> &str {
        match self.failed_in("emailupdate") {
            Some(_) => self.value("emailupdate", "emailAddress"),
            None => self
                .addresses
                .iter()
                .find(|(_, primary)| *primary)
                .map(|(a, _)| a.as_str())
                .unwrap_or_default(),
        }
    }

    /// Whether `option` is the choice to show again in `field` of `form`.
    pub fn selected(&self, form: &str, field: &str, option: &str) -> bool {
        self.value(form, field) == option
    }

    /// The value to show again in `field` of `form` after a refusal.
    pub fn value(&self, form: &str, field: &str) -> &str {
        self.failed_in(form)
            .and_then(|f| f.values.iter().find(|(k, _)| k == field))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Option<Nav>,
    csrf: String,
    user: UserHead,
    accounts: Vec<AccountCard>,
    identity_fields: Vec<FieldSpec>,
    identity_modes: Vec<&'static str>,
    admin_view: bool,
    hosted_id: String,
    reset_error: Option<String>,
    general_error: Option<String>,
    changes: Vec<ChangeRow>,
}

/// The grant a page reads with: the organization's for an admin, the user's own for a
/// member.
fn read_grant(session: &Session) -> Result<Grant, ApiError> {
    let p = &session.principal;
    Ok(if session.is_admin() {
        p.admin_grant(Access::Read)?
    } else {
        p.user_grant(Access::Read)?
    })
}

/// `GET /console/users/{zuid}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Segments(zuid): Segments<String>,
    Query(done): Query<Done>,
) -> Response {
    let current = if zuid == session.principal.zuid().to_string() {
        "me"
    } else {
        "users"
    };
    let nav = Nav::of(&state, &session, current)
        .await
        .with_notice(account_forms::notice(&done.done));
    let Ok(zuid) = zuid.parse::<Zuid>() else {
        return render::not_found(nav);
    };
    render_user(&state, &session, nav, zuid, None, StatusCode::OK).await
}

async fn render_user(
    state: &AppState,
    session: &Session,
    nav: Nav,
    zuid: Zuid,
    failed: Option<Failed>,
    status: StatusCode,
) -> Response {
    let grant = match read_grant(session) {
        Ok(g) => g,
        Err(_) => return render::not_found(nav),
    };
    let (accounts, history) = match tokio::try_join!(
        state.store.user_accounts(&grant, zuid),
        state.store.user_history(&grant, zuid, 0, HISTORY_ROWS)
    ) {
        Ok(found) => found,
        Err(e) => return render::unavailable(e.into()),
    };
    let Some(accounts) = accounts.filter(|a| !a.is_empty()) else {
        return render::not_found(nav);
    };
    let failed = failed.map(std::sync::Arc::new);
    let hosted = accounts
        .iter()
        .find(|a| a.kind == AccountKind::Hosted)
        .unwrap_or(&accounts[0]);
    let user = UserHead {
        zuid: zuid.get(),
        name: person(hosted),
        address: hosted
            .primary_address()
            .map(ToString::to_string)
            .unwrap_or_default(),
        role: hosted.role.as_str(),
    };
    let reset_error = failed
        .as_deref()
        .filter(|f| f.form == CardForm::Password)
        .map(|f| f.message.clone());
    let cards = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| card(a, i + 1, failed.clone()))
        .collect();
    let page = UserPage {
        csrf: session.csrf.clone(),
        user,
        accounts: cards,
        identity_fields: identity_fields(),
        identity_modes: account_forms::identity_modes(),
        admin_view: session.is_admin(),
        hosted_id: hosted.account_id.to_string(),
        reset_error,
        general_error: None,
        changes: ChangeRow::all(state, &grant, &history.unwrap_or_default()).await,
        nav: Some(nav),
    };
    render::page(status, &page)
}

/// A user's name as the pages show it.
pub(crate) fn person(a: &AccountView) -> String {
    if !a.display_name.trim().is_empty() {
        return a.display_name.clone();
    }
    let full = format!("{} {}", a.first_name, a.last_name);
    let full = full.trim();
    if full.is_empty() {
        a.primary_address()
            .map(ToString::to_string)
            .unwrap_or_default()
    } else {
        full.to_string()
    }
}

fn identity_fields() -> Vec<FieldSpec> {
    let label = |name: &str| match name {
        "fromAddress" => "From address",
        "displayName" => "Display name",
        "mode" => "Kind",
        "serverName" => "SMTP server",
        "serverPort" => "Port",
        "smtpConnection" => "Connection",
        "userName" => "SMTP user name",
        _ => "SMTP password",
    };
    IDENTITY_FIELDS
        .iter()
        .map(|&name| FieldSpec {
            name,
            label: label(name),
            kind: match name {
                "password" => "password",
                "fromAddress" => "email",
                "serverPort" => "number",
                _ => "text",
            },
        })
        .collect()
}

fn card(a: &AccountView, position: usize, failed: Option<std::sync::Arc<Failed>>) -> AccountCard {
    let id = a.account_id.to_string();
    let title = match (&a.kind, &a.external_address) {
        (AccountKind::Hosted, _) => a
            .primary_address()
            .map(ToString::to_string)
            .unwrap_or_else(|| "Mailbox".into()),
        (_, Some(addr)) => addr.to_string(),
        (kind, None) => kind.as_str().to_string(),
    };
    let (status, status_class) = if !a.enabled {
        ("disabled", "bad")
    } else if a.outgoing_blocked || a.incoming_blocked {
        ("mail blocked", "warn")
    } else {
        ("active", "ok")
    };
    AccountCard {
        failed: failed.filter(|f| f.account == id),
        id,
        title,
        hosted: a.kind == AccountKind::Hosted,
        addresses: a
            .addresses
            .iter()
            .map(|x| (x.address.to_string(), x.is_primary))
            .collect(),
        enabled: a.enabled,
        outgoing_blocked: a.outgoing_blocked,
        incoming_blocked: a.incoming_blocked,
        status,
        status_class,
        position,
        identities: a.identities.iter().map(identity_row).collect(),
    }
}

fn identity_row(i: &Identity) -> IdentityRow {
    let relay = i.relay.as_ref().map_or_else(String::new, |r| {
        format!(
            "{}:{} ({}) as {}",
            r.server_name,
            r.server_port,
            r.smtp_connection.as_str(),
            r.user_name
        )
    });
    let unconfirmed = i.is_claim() && !i.verification.owner_confirmed;
    let relay_failed = crate::view::validation_state(i) == "failed";
    // What stands in the way first: the owner's confirmation, then the relay's check.
    let (state, state_class) = if i.may_send() {
        ("in use", "ok")
    } else if unconfirmed {
        ("awaiting confirmation", "warn")
    } else if relay_failed {
        ("relay failed", "bad")
    } else if !i.state.is_active() {
        ("not in use", "bad")
    } else {
        ("awaiting relay check", "warn")
    };
    let mut why = i
        .state
        .reason()
        .map(str::to_string)
        .or_else(|| i.unverified_reason());
    if let (true, Some(error)) = (unconfirmed && relay_failed, &i.verification.relay.error) {
        // Said as well, so the user can fix the relay while the key is on its way.
        why = Some(format!(
            "{}; the relay's check failed: {error}",
            why.unwrap_or_default()
        ));
    }
    IdentityRow {
        id: i.id.to_string(),
        from: i.from_address.to_string(),
        name: i.display_name.clone(),
        mode: i.mode.as_str(),
        relay,
        state,
        state_class,
        why,
        needs_key: unconfirmed,
        checkable: i.mode == IdentityMode::ExtFrom && i.verification.owner_confirmed,
    }
}

/// `POST /console/accounts/{accountId}`: one form of an account's card.
pub(crate) async fn change(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    session: Session,
    Segments(account): Segments<String>,
    form: Form,
) -> Response {
    if let Err(refused) = session::check_post(&state, &headers, &session, &form).await {
        return refused;
    }
    let nav = Nav::of(&state, &session, "users").await;
    let Ok(account) = account.parse() else {
        return render::not_found(nav);
    };
    let kind = if session.is_admin() {
        GrantKind::Admin
    } else {
        GrantKind::User
    };
    // The account as the session may see it: its owner, and the owner's other accounts
    // for a change of order.
    let caller = Caller {
        token: &session.token,
        kind,
    };
    let target = match state.store.account(caller, account).await {
        Ok(Some(a)) => a,
        Ok(None) => return render::not_found(nav),
        Err(e) => return render::unavailable(e.into()),
    };
    let action = form.get("action");
    // The owner's other accounts matter only to a change of order: read only for one.
    let all = if action.starts_with("move_") {
        let grant = match read_grant(&session) {
            Ok(g) => g,
            Err(_) => return render::not_found(nav),
        };
        match state.store.user_accounts(&grant, target.zuid).await {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => return render::unavailable(e.into()),
        }
    } else {
        Vec::new()
    };
    let Some(Operation {
        form: card_form,
        body,
        by_user,
        done,
    }) = account_forms::operation(action, &form, &target, &all)
    else {
        return render::message(
            StatusCode::BAD_REQUEST,
            Some(nav),
            "Nothing was changed",
            "This form asks for nothing the console knows.",
        );
    };
    let path = if by_user {
        target.zuid.get()
    } else {
        target.account_id.get()
    };
    let zoid = (kind == GrantKind::Admin).then(|| session.principal.zoid());
    let answer = api_accounts::update(
        &state,
        &meta,
        &session.as_bearer(),
        kind,
        zoid,
        PathNumber(path),
        Ok(Bytes::from(body.to_string())),
    )
    .await;
    let owner = target.zuid;
    match answer {
        Ok(_) => render::see_other(&format!(
            "/console/users/{owner}?done={done}#account-{}",
            target.account_id
        )),
        Err(e) => {
            let (status, message) = render::refusal(&e);
            if status.is_server_error() {
                return render::unavailable(e);
            }
            let failed = Failed {
                account: target.account_id.to_string(),
                form: card_form,
                field: render::field_of(&message, card_form.fields()),
                message,
                values: kept_values(&form),
            };
            render_user(&state, &session, nav, owner, Some(failed), status).await
        }
    }
}

/// The values a refused form shows again: every field but the passwords and the token.
fn kept_values(form: &Form) -> Vec<(String, String)> {
    IDENTITY_FIELDS
        .iter()
        .chain(&["emailAddress"])
        .filter(|k| **k != "password")
        .map(|k| ((*k).to_string(), form.get(k).to_string()))
        .collect()
}
