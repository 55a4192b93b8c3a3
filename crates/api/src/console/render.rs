//! Turning a page into an answer, and the pages every route may end on: a refusal, a
//! missing page, a server that cannot answer now.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;

use mailplane_domain::{Access, Zuid};
use mailplane_store::{AuditEntry, Grant};

use super::session::Session;
use super::time;
use crate::error::ApiError;
use crate::AppState;

/// What the header of a signed-in page shows.
pub(crate) struct Nav {
    pub admin: bool,
    pub zuid: u64,
    /// The user's primary address (or name).
    pub who: String,
    pub csrf: String,
    /// Which entry of the menu is this page.
    pub current: &'static str,
    /// A line saying what the last change did.
    pub notice: Option<String>,
}

impl Nav {
    /// The header for `session`: its user's primary address, read with the session's
    /// own grant.
    pub async fn of(state: &AppState, session: &Session, current: &'static str) -> Nav {
        let who = match session.principal.user_grant(Access::Read) {
            Ok(grant) => state
                .store
                .own_accounts(&grant)
                .await
                .ok()
                .and_then(|list| mailbox_address(&list))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        Nav {
            admin: session.is_admin(),
            zuid: session.principal.zuid().get(),
            who,
            csrf: session.csrf.clone(),
            current,
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<&'static str>) -> Nav {
        self.notice = notice.map(str::to_string);
        self
    }
}

/// The primary address of a user's hosted account among their `accounts`, wherever the
/// user put it in their order.
pub(crate) fn mailbox_address(accounts: &[mailplane_store::AccountView]) -> Option<String> {
    accounts
        .iter()
        .filter(|a| a.kind == mailplane_domain::AccountKind::Hosted)
        .find_map(|a| a.primary_address().map(ToString::to_string))
}

/// A rendered page with `status`.
pub(crate) fn page<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(cause = %e, "a console page could not be rendered");
            plain_message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "This page could not be shown. Nothing was changed.",
            )
        }
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    nav: Option<Nav>,
    heading: &'a str,
    message: &'a str,
}

/// A page that only says something, with the menu when there is a session.
pub(crate) fn message(
    status: StatusCode,
    nav: Option<Nav>,
    heading: &str,
    message: &str,
) -> Response {
    let html = MessagePage {
        nav,
        heading,
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    (status, Html(html)).into_response()
}

/// [`message`] without a session.
pub(crate) fn plain_message(status: StatusCode, heading: &str, text: &str) -> Response {
    message(status, None, heading, text)
}

/// 403: a member on an admin page.
pub(crate) fn forbidden(nav: Nav) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(nav),
        "Not allowed",
        "This page is for the organization's administrators.",
    )
}

/// 404: nothing here, or nothing the user may see (the same answer).
pub(crate) fn not_found(nav: Nav) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Some(nav),
        "Not found",
        "There is no such page, or it is not yours to see.",
    )
}

/// The store could not answer: 503, the cause logged.
pub(crate) fn unavailable(e: ApiError) -> Response {
    let (status, _, code, cause) = e.parts();
    tracing::error!(%cause, code, "console request failed");
    let status = if status.is_server_error() {
        status
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = plain_message(
        status,
        "Try again shortly",
        "The server cannot complete this right now. Nothing was changed.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// 303 to `to`: after a change, the page shows the new state (and a reload does not
/// post again).
pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// An API error as the console says it: its status and its sentence.
pub(crate) fn refusal(e: &ApiError) -> (StatusCode, String) {
    let (status, _, _, message) = e.parts();
    (status, message)
}

/// The field a refusal's sentence names: the first of `fields` that appears in it as a
/// word (`sendMailDetails[0].fromAddress must be …` names `fromAddress`).
pub(crate) fn field_of<'a>(message: &str, fields: &[&'a str]) -> Option<&'a str> {
    fields
        .iter()
        .filter_map(|f| word_at(message, f).map(|at| (at, *f)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, f)| f)
}

fn word_at(text: &str, word: &str) -> Option<usize> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// One audit row as the tables show it.
pub(crate) struct ChangeRow {
    pub at: String,
    pub mode: String,
    pub account: String,
    pub actor: String,
    pub via: String,
    pub after: String,
}

impl ChangeRow {
    /// The rows of `entries`, each actor named by their primary address where `grant`
    /// reaches them (a user since deleted, or out of reach, stays `user <zuid>`).
    pub async fn all(state: &AppState, grant: &Grant, entries: &[AuditEntry]) -> Vec<ChangeRow> {
        let mut names: HashMap<i64, String> = HashMap::new();
        for zuid in entries.iter().filter_map(|e| e.actor_zuid) {
            if names.contains_key(&zuid) {
                continue;
            }
            let address = match u64::try_from(zuid).ok().and_then(|z| Zuid::new(z).ok()) {
                Some(z) => state
                    .store
                    .user_accounts(grant, z)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|list| mailbox_address(&list)),
                None => None,
            };
            names.insert(zuid, address.unwrap_or_else(|| format!("user {zuid}")));
        }
        entries.iter().map(|e| ChangeRow::of(e, &names)).collect()
    }

    fn of(e: &AuditEntry, names: &HashMap<i64, String>) -> ChangeRow {
        // What the change left, or for a removal what it removed.
        let removed = e.after.as_object().is_some_and(|o| o.is_empty());
        let mut details = if removed {
            format!("removed: {}", e.before)
        } else {
            e.after.to_string()
        };
        if details.len() > 300 {
            let mut end = 300;
            while !details.is_char_boundary(end) {
                end -= 1;
            }
            details.truncate(end);
            details.push('…');
        }
        ChangeRow {
            at: time::utc(e.at_ms),
            mode: e.mode.clone(),
            account: e.account_id.map(|a| a.to_string()).unwrap_or_default(),
            actor: e.actor_zuid.map_or_else(
                || "system".to_string(),
                |z| {
                    names
                        .get(&z)
                        .cloned()
                        .unwrap_or_else(|| format!("user {z}"))
                },
            ),
            via: e.via.clone().unwrap_or_else(|| {
                if e.actor_zuid.is_some() {
                    "api"
                } else {
                    "system"
                }
                .to_string()
            }),
            after: details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_names_its_field() {
        let fields = ["fromAddress", "displayName", "mode", "password"];
        assert_eq!(
            field_of(
                "sendMailDetails[0].fromAddress must be an email address",
                &fields
            ),
            Some("fromAddress")
        );
        assert_eq!(
            field_of("sendMailDetails[0].displayName is mandatory", &fields),
            Some("displayName")
        );
        // `modes` is not `mode`.
        assert_eq!(field_of("supported modes: a, b", &fields), None);
        assert_eq!(
            field_of("the mode is wrong; fromAddress too", &fields),
            Some("mode")
        );
    }
}
