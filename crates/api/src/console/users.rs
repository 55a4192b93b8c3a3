//! The organization's users: the table (searched and paged in the database), adding a
//! user, and deleting users after a confirmation that names them.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use mailplane_domain::{Access, Zuid};
use mailplane_store::{AccountView, Grant, RequestMeta};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::admin_pages::{admin_grant, admin_post};
use super::form::Form;
use super::render::{self, Nav};
use super::session::Session;
use super::user_page::person;
use crate::routes::{organization, Segments};
use crate::AppState;

/// Users per page of the table.
const PAGE_ROWS: u32 = 25;
/// The most users one deletion names (the API's own limit applies as well).
const MAX_DELETE: usize = 100;

pub(crate) struct UserRow {
    zuid: String,
    name: String,
    address: String,
    role: &'static str,
    status: &'static str,
    status_class: &'static str,
}

fn row(a: &AccountView) -> UserRow {
    let (status, status_class) = if a.enabled {
        ("active", "ok")
    } else {
        ("disabled", "bad")
    };
    UserRow {
        zuid: a.zuid.to_string(),
        name: person(a),
        address: a
            .primary_address()
            .map(ToString::to_string)
            .unwrap_or_default(),
        role: a.role.as_str(),
        status,
        status_class,
    }
}

/// A field of the add-user form.
pub(crate) struct NewUserField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    value: String,
    error: Option<String>,
}

/// The add-user form, named as the keys of `POST /api/organization/{zoid}/accounts`.
pub(crate) struct NewUserForm {
    fields: Vec<NewUserField>,
    general: Option<String>,
}

const NEW_USER_FIELDS: &[(&str, &str, &str, bool)] = &[
    ("primaryEmailAddress", "Email address", "email", true),
    ("password", "Password", "password", true),
    ("firstName", "First name", "text", false),
    ("lastName", "Last name", "text", false),
    ("displayName", "Display name", "text", false),
    ("role", "Role", "select", false),
];

impl NewUserForm {
    fn empty() -> Self {
        Self::filled(None, None)
    }

    /// The form with what was posted (never the password) and the refusal at its field.
    fn filled(form: Option<&Form>, refusal: Option<String>) -> Self {
        let names: Vec<&str> = NEW_USER_FIELDS.iter().map(|f| f.0).collect();
        let at = refusal.as_deref().and_then(|m| render::field_of(m, &names));
        let fields = NEW_USER_FIELDS
            .iter()
            .map(|&(name, label, kind, required)| NewUserField {
                name,
                label,
                kind,
                required,
                value: match (form, name) {
                    (_, "password") | (None, _) => {
                        if name == "role" {
                            "member".into()
                        } else {
                            String::new()
                        }
                    }
                    (Some(f), _) => f.get(name).to_string(),
                },
                error: refusal.clone().filter(|_| at == Some(name)),
            })
            .collect();
        NewUserForm {
            fields,
            general: refusal.filter(|_| at.is_none()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    query: String,
    users: Vec<UserRow>,
    summary: String,
    page: u32,
    pages: u32,
    prev: Option<String>,
    next: Option<String>,
    form: NewUserForm,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    done: String,
}

fn page_url(q: &str, page: u32) -> String {
    let query =
        serde_urlencoded::to_string([("q", q), ("page", &page.to_string())]).unwrap_or_default();
    format!("/console/users?{query}")
}

/// `GET /console/users?q=&page=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Response {
    let (grant, nav) = match admin_grant(&state, &session, "users", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    let nav = nav.with_notice(super::account_forms::notice(&q.done));
    let page = q.page.trim().parse::<u32>().unwrap_or(1).max(1);
    users_page(
        &state,
        &session,
        grant,
        nav,
        q.q.trim(),
        page,
        NewUserForm::empty(),
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn users_page(
    state: &AppState,
    session: &Session,
    grant: Grant,
    nav: Nav,
    search: &str,
    page: u32,
    form: NewUserForm,
    status: StatusCode,
) -> Response {
    let zoid = session.principal.zoid();
    // The offset stays within what a u32 holds; past the last page the table is empty.
    let start = (page - 1).saturating_mul(PAGE_ROWS);
    let found = match state
        .store
        .users_page(&grant, zoid, search, start, PAGE_ROWS)
        .await
    {
        Ok(Some(found)) => found,
        Ok(None) => return render::not_found(nav),
        Err(e) => return render::unavailable(e.into()),
    };
    let pages = (found.total.div_ceil(u64::from(PAGE_ROWS))).max(1) as u32;
    let shown = found.accounts.len() as u64;
    let summary = match (found.total, search.is_empty()) {
        (1, true) => "1 user".to_string(),
        (n, true) => format!("{n} users, {shown} on this page"),
        (n, false) => format!("{n} matching “{search}”, {shown} on this page"),
    };
    render::page(
        status,
        &UsersPage {
            csrf: session.csrf.clone(),
            query: search.to_string(),
            users: found.accounts.iter().map(row).collect(),
            summary,
            page,
            pages,
            prev: (page > 1).then(|| page_url(search, page - 1)),
            next: (page < pages).then(|| page_url(search, page + 1)),
            form,
            nav: Some(nav),
        },
    )
}

/// `POST /console/users`: the API's Add User with the form's fields.
pub(crate) async fn add(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    session: Session,
    form: Form,
) -> Response {
    let (grant, nav) =
        match admin_post(&state, &headers, &session, &form, "users", Access::Create).await {
            Ok(g) => g,
            Err(refused) => return refused,
        };
    let mut body = Map::new();
    for (name, ..) in NEW_USER_FIELDS {
        let value = if *name == "password" {
            form.raw(name)
        } else {
            form.get(name)
        };
        // An empty optional field is left out, as a client would leave it out.
        if !value.is_empty() || *name == "primaryEmailAddress" || *name == "password" {
            body.insert((*name).to_string(), json!(value));
        }
    }
    let zoid = session.principal.zoid().to_string();
    let answer = organization::create_account(
        State(state.clone()),
        Extension(meta),
        Segments(zoid),
        session.as_bearer(),
        Ok(Bytes::from(Value::Object(body).to_string())),
    )
    .await;
    match answer {
        Ok(_) => render::see_other("/console/users?done=user_added"),
        Err(e) => {
            let (status, message) = render::refusal(&e);
            if status.is_server_error() {
                return render::unavailable(e);
            }
            let form = NewUserForm::filled(Some(&form), Some(message));
            users_page(&state, &session, grant, nav, "", 1, form, status).await
        }
    }
}

#[derive(Template)]
#[template(path = "console/delete_users.html")]
struct DeletePage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserRow>,
    error: Option<String>,
}

/// The users the request names, as the admin may see them: an unknown zuid or one of
/// another organization is not listed.
async fn named_users(
    state: &AppState,
    grant: &Grant,
    zuids: impl Iterator<Item = &str>,
) -> Result<Vec<AccountView>, crate::error::ApiError> {
    let mut out: Vec<AccountView> = Vec::new();
    for text in zuids.take(MAX_DELETE) {
        let Ok(zuid) = text.parse::<Zuid>() else {
            continue;
        };
        if out.iter().any(|a| a.zuid == zuid) {
            continue;
        }
        if let Some(accounts) = state.store.user_accounts(grant, zuid).await? {
            if let Some(hosted) = accounts
                .iter()
                .find(|a| a.kind == mailplane_domain::AccountKind::Hosted)
                .or(accounts.first())
            {
                out.push(hosted.clone());
            }
        }
    }
    Ok(out)
}

/// `GET /console/users/delete?zuid=…`: the confirmation, naming each user.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let (grant, nav) = match admin_grant(&state, &session, "users", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let zuids = pairs
        .iter()
        .filter(|(k, _)| k == "zuid")
        .map(|(_, v)| v.as_str());
    let users = match named_users(&state, &grant, zuids).await {
        Ok(u) => u,
        Err(e) => return render::unavailable(e),
    };
    if users.is_empty() {
        return render::see_other("/console/users");
    }
    render::page(
        StatusCode::OK,
        &DeletePage {
            nav: Some(nav),
            csrf: session.csrf.clone(),
            users: users.iter().map(row).collect(),
            error: None,
        },
    )
}

/// `POST /console/users/delete`: the API's Delete User Accounts with the confirmed zuids.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    session: Session,
    form: Form,
) -> Response {
    let (grant, nav) =
        match admin_post(&state, &headers, &session, &form, "users", Access::Delete).await {
            Ok(g) => g,
            Err(refused) => return refused,
        };
    let zuids: Vec<&str> = form.all("zuid").take(MAX_DELETE).collect();
    if zuids.is_empty() {
        return render::see_other("/console/users");
    }
    let zoid = session.principal.zoid().to_string();
    // Numbers, as the API's clients send zuids; anything else as written, for the API to
    // name.
    let list: Vec<Value> = zuids
        .iter()
        .map(|z| z.parse::<u64>().map_or_else(|_| json!(z), |n| json!(n)))
        .collect();
    let body = json!({ "accountList": list });
    let answer = organization::delete_accounts(
        State(state.clone()),
        Extension(meta),
        Segments(zoid),
        session.as_bearer(),
        Ok(Bytes::from(body.to_string())),
    )
    .await;
    match answer {
        Ok(_) => render::see_other("/console/users?done=users_deleted"),
        Err(e) => {
            let (status, message) = render::refusal(&e);
            if status.is_server_error() {
                return render::unavailable(e);
            }
            let users = named_users(&state, &grant, zuids.into_iter())
                .await
                .unwrap_or_default();
            render::page(
                status,
                &DeletePage {
                    nav: Some(nav),
                    csrf: session.csrf.clone(),
                    users: users.iter().map(row).collect(),
                    error: Some(message),
                },
            )
        }
    }
}
