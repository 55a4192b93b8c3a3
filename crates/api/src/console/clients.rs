//! The organization's OAuth clients: the list, registering one (its secret shown once)
//! and deleting one.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use mailplane_domain::Access;
use mailplane_store::{Grant, RequestMeta};

use super::admin_pages::{admin_grant, admin_post};
use super::form::Form;
use super::render::{self, Nav};
use super::session::Session;
use super::time;
use crate::error::ApiError;
use crate::AppState;

pub(crate) struct ClientRow {
    client_id: String,
    name: String,
    redirect_uri: String,
    created: String,
}

/// A client just registered: the one time its secret is shown.
pub(crate) struct Created {
    name: String,
    client_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage {
    nav: Option<Nav>,
    csrf: String,
    clients: Vec<ClientRow>,
    created: Option<Created>,
    general_error: Option<String>,
    name: String,
    redirect_uri: String,
    name_error: Option<String>,
    redirect_error: Option<String>,
}

/// What the page shows besides the list.
#[derive(Default)]
struct Extra {
    created: Option<Created>,
    name: String,
    redirect_uri: String,
    refusal: Option<String>,
}

async fn page(
    state: &AppState,
    session: &Session,
    grant: &Grant,
    nav: Nav,
    status: StatusCode,
    extra: Extra,
) -> Response {
    let clients = match state
        .store
        .org_clients(grant, session.principal.zoid())
        .await
    {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => return render::unavailable(e.into()),
    };
    let at = extra
        .refusal
        .as_deref()
        .and_then(|m| render::field_of(m, &["name", "redirectUri"]));
    let refusal_at = |field: &str| extra.refusal.clone().filter(|_| at == Some(field));
    render::page(
        status,
        &ClientsPage {
            csrf: session.csrf.clone(),
            clients: clients
                .iter()
                .map(|c| ClientRow {
                    client_id: c.client_id.clone(),
                    name: c.name.clone(),
                    redirect_uri: c.redirect_uri.clone().unwrap_or_default(),
                    created: time::utc(c.created_ms),
                })
                .collect(),
            name_error: refusal_at("name"),
            redirect_error: refusal_at("redirectUri"),
            general_error: extra.refusal.clone().filter(|_| at.is_none()),
            created: extra.created,
            name: extra.name,
            redirect_uri: extra.redirect_uri,
            nav: Some(nav),
        },
    )
}

/// `GET /console/clients`.
pub(crate) async fn list(State(state): State<AppState>, session: Session) -> Response {
    let (grant, nav) = match admin_grant(&state, &session, "clients", Access::Read).await {
        Ok(g) => g,
        Err(refused) => return refused,
    };
    page(
        &state,
        &session,
        &grant,
        nav,
        StatusCode::OK,
        Extra::default(),
    )
    .await
}

/// `POST /console/clients`: registers a client of the organization. The answer is the
/// page that shows its secret, once; nothing keeps it but a digest.
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    session: Session,
    form: Form,
) -> Response {
    // Registering changes the organization: the grant of a change, not of a read.
    let (grant, nav) =
        match admin_post(&state, &headers, &session, &form, "clients", Access::Create).await {
            Ok(g) => g,
            Err(refused) => return refused,
        };
    let (name, redirect) = (form.get("name"), form.get("redirectUri"));
    let redirect_uri = Some(redirect).filter(|r| !r.is_empty());
    match state
        .store
        .register_org_client(&grant, &meta, session.principal.zoid(), name, redirect_uri)
        .await
    {
        Ok(creds) => {
            let extra = Extra {
                created: Some(Created {
                    name: name.to_string(),
                    client_id: creds.client_id.clone(),
                    secret: creds.client_secret.clone(),
                }),
                ..Extra::default()
            };
            page(&state, &session, &grant, nav, StatusCode::CREATED, extra).await
        }
        Err(e) => {
            let e = ApiError::from(e);
            let (status, message) = render::refusal(&e);
            if status.is_server_error() {
                return render::unavailable(e);
            }
            let extra = Extra {
                name: name.to_string(),
                redirect_uri: redirect.to_string(),
                refusal: Some(message),
                ..Extra::default()
            };
            page(&state, &session, &grant, nav, status, extra).await
        }
    }
}

/// `POST /console/clients/delete`: deletes a client of the organization; its refresh
/// tokens and the access tokens minted from them go with it.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    session: Session,
    form: Form,
) -> Response {
    let (grant, nav) =
        match admin_post(&state, &headers, &session, &form, "clients", Access::Delete).await {
            Ok(g) => g,
            Err(refused) => return refused,
        };
    match state
        .store
        .delete_org_client(
            &grant,
            &meta,
            session.principal.zoid(),
            form.get("clientId"),
        )
        .await
    {
        Ok(true) => {
            page(
                &state,
                &session,
                &grant,
                nav.with_notice(super::account_forms::notice("client_deleted")),
                StatusCode::OK,
                Extra::default(),
            )
            .await
        }
        Ok(false) => render::not_found(nav),
        Err(e) => render::unavailable(e.into()),
    }
}
