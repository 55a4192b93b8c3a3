//! The organization's pages for its admins: the overview, the audit log and the
//! security events. A member gets 403.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailplane_domain::{Access, AccountId, Zuid};
use mailplane_store::{AuditQuery, Grant};
use serde::Deserialize;

use super::render::{self, ChangeRow, Nav};
use super::session::Session;
use super::time;
use crate::AppState;

/// Rows per page of the audit log and the security events.
const PAGE_ROWS: u32 = 50;
/// Changes on the overview.
const LATEST: u32 = 10;
/// The last page either log may be paged to (the offset stays bounded).
const MAX_PAGE: u32 = 1000;

/// The admin's grant, or the page that refuses a member.
pub(crate) async fn admin_grant(
    state: &AppState,
    session: &Session,
    current: &'static str,
    access: Access,
) -> Result<(Grant, Nav), Response> {
    let nav = Nav::of(state, session, current).await;
    match session.principal.admin_grant(access) {
        Ok(grant) => Ok((grant, nav)),
        Err(_) => Err(render::forbidden(nav)),
    }
}

/// The checks of an admin page's post: the form's origin and token, then the admin's
/// grant.
pub(crate) async fn admin_post(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    session: &Session,
    form: &super::form::Form,
    current: &'static str,
    access: Access,
) -> Result<(Grant, Nav), Response> {
    super::session::check_post(state, headers, session, form).await?;
    admin_grant(state, session, current, access).await
}

pub(crate) struct OrgFacts {
    name: String,
    zoid: String,
    domains: String,
    users: u64,
    mailboxes: u64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    nav: Option<Nav>,
    org: OrgFacts,
    changes: Vec<ChangeRow>,
}

/// `GET /console`: an admin's overview; a member's own page.
pub(crate) async fn overview(State(state): State<AppState>, session: Session) -> Response {
    if !session.is_admin() {
        return render::see_other(&format!("/console/users/{}", session.principal.zuid()));
    }
    let (grant, nav) = match admin_grant(&state, &session, "overview", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    let zoid = session.principal.zoid();
    let latest = AuditQuery {
        limit: LATEST,
        ..AuditQuery::default()
    };
    let (org, changes) = match tokio::try_join!(
        state.store.organization(&grant, zoid),
        state.store.audit_log(&grant, zoid, latest)
    ) {
        Ok(found) => found,
        Err(e) => return render::unavailable(e.into()),
    };
    let Some(org) = org else {
        return render::not_found(nav);
    };
    render::page(
        StatusCode::OK,
        &Overview {
            nav: Some(nav),
            org: OrgFacts {
                name: org.name.clone(),
                zoid: org.zoid.to_string(),
                domains: org.domains.join(", "),
                users: org.users_count,
                mailboxes: org.mailbox_count,
            },
            changes: ChangeRow::all(&state, &grant, &changes.unwrap_or_default()).await,
        },
    )
}

/// The filters and page of a log's URL. Every value arrives as text: a bad one is said
/// on the page, not answered with a bare 400.
#[derive(Deserialize, Default)]
pub(crate) struct LogQuery {
    #[serde(default)]
    account: String,
    #[serde(default)]
    user: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    page: String,
}

impl LogQuery {
    fn page(&self) -> u32 {
        self.page
            .trim()
            .parse::<u32>()
            .unwrap_or(1)
            .clamp(1, MAX_PAGE)
    }

    /// The URL of page `page` with the same filters.
    fn url(&self, base: &str, page: u32) -> String {
        let q = serde_urlencoded::to_string([
            ("account", self.account.trim()),
            ("user", self.user.trim()),
            ("type", self.kind.trim()),
            ("page", &page.to_string()),
        ])
        .unwrap_or_default();
        format!("{base}?{q}")
    }

    /// The query for the store, or the sentence that says which filter is wrong.
    fn to_query(&self) -> Result<AuditQuery, String> {
        let account = match self.account.trim() {
            "" => None,
            text => Some(
                text.parse::<AccountId>()
                    .map_err(|_| "Account id: expected the number of an account".to_string())?,
            ),
        };
        let actor = match self.user.trim() {
            "" => None,
            text => Some(
                text.parse::<Zuid>()
                    .map_err(|_| "User id: expected the number (zuid) of a user".to_string())?,
            ),
        };
        let kind = Some(self.kind.trim())
            .filter(|k| !k.is_empty())
            .map(|k| k.chars().take(64).collect());
        Ok(AuditQuery {
            start: (self.page() - 1) * PAGE_ROWS,
            limit: PAGE_ROWS,
            account,
            actor,
            kind,
            ..AuditQuery::default()
        })
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    account: String,
    kind: String,
    kinds: Vec<String>,
    error: Option<String>,
    changes: Vec<ChangeRow>,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
}

/// `GET /console/audit`.
pub(crate) async fn audit(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LogQuery>,
) -> Response {
    let (grant, nav) = match admin_grant(&state, &session, "audit", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    let zoid = session.principal.zoid();
    let (query, error) = match q.to_query() {
        Ok(query) => (Some(query), None),
        Err(e) => (None, Some(e)),
    };
    let rows = match &query {
        Some(query) => state.store.audit_log(&grant, zoid, query.clone()).await,
        None => Ok(Some(Vec::new())),
    };
    let (rows, kinds) = match (rows, state.store.audit_kinds(&grant, zoid).await) {
        (Ok(rows), Ok(kinds)) => (rows.unwrap_or_default(), kinds.unwrap_or_default()),
        (Err(e), _) | (_, Err(e)) => return render::unavailable(e.into()),
    };
    let page = q.page();
    let full = rows.len() as u32 == PAGE_ROWS;
    render::page(
        StatusCode::OK,
        &AuditPage {
            nav: Some(nav),
            account: q.account.trim().to_string(),
            kind: q.kind.trim().to_string(),
            kinds,
            error,
            changes: ChangeRow::all(&state, &grant, &rows).await,
            page,
            prev: (page > 1).then(|| q.url("/console/audit", page - 1)),
            next: (full && page < MAX_PAGE).then(|| q.url("/console/audit", page + 1)),
        },
    )
}

pub(crate) struct EventRow {
    at: String,
    count: u64,
    status: u16,
    code: String,
    request: String,
    actor: String,
    client: String,
}

#[derive(Template)]
#[template(path = "console/security.html")]
struct SecurityPage {
    nav: Option<Nav>,
    actor: String,
    kind: String,
    error: Option<String>,
    events: Vec<EventRow>,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
}

/// `GET /console/security`.
pub(crate) async fn security(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<LogQuery>,
) -> Response {
    let (grant, nav) = match admin_grant(&state, &session, "security", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    let (query, error) = match q.to_query() {
        Ok(query) => (Some(query), None),
        Err(e) => (None, Some(e)),
    };
    let events = match &query {
        Some(query) => match state
            .store
            .security_events(&grant, session.principal.zoid(), query.clone())
            .await
        {
            Ok(found) => found.unwrap_or_default(),
            Err(e) => return render::unavailable(e.into()),
        },
        None => Vec::new(),
    };
    let page = q.page();
    let full = events.len() as u32 == PAGE_ROWS;
    render::page(
        StatusCode::OK,
        &SecurityPage {
            nav: Some(nav),
            actor: q.user.trim().to_string(),
            kind: q.kind.trim().to_string(),
            error,
            events: events
                .iter()
                .map(|e| EventRow {
                    at: time::utc(e.at_ms),
                    count: e.count,
                    status: e.status,
                    code: e.error_code.clone(),
                    request: format!("{} {}", e.method, e.path),
                    actor: e
                        .actor_zuid
                        .map(|z| format!("user {z}"))
                        .unwrap_or_default(),
                    client: e.client_addr.clone().unwrap_or_default(),
                })
                .collect(),
            page,
            prev: (page > 1).then(|| q.url("/console/security", page - 1)),
            next: (full && page < MAX_PAGE).then(|| q.url("/console/security", page + 1)),
        },
    )
}
