//! The OAuth clients an organization's admins register in the web console. Only the
//! organization that registered a client lists or deletes it there; the operator's
//! clients (registered on the command line, `zoid` NULL) are never within reach.

use mailplane_domain::{Role, RuleError, Zoid};
use serde_json::json;

use super::flow::insert_client;
use super::ClientCredentials;
use crate::db::Db;
use crate::write::{audit, AuditRow};
use crate::{Grant, RequestMeta, StoreError, WriteError};

/// The most clients an organization may have registered at once.
pub const MAX_CLIENTS_PER_ORG: i64 = 50;
/// The most clients a listing holds (above [`MAX_CLIENTS_PER_ORG`], so that clients made
/// before a lower limit still show).
pub const MAX_LISTED_CLIENTS: i64 = 200;
/// The longest client name, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;
/// The longest redirect URI, in characters.
pub const MAX_REDIRECT_URI_CHARS: usize = 2000;

/// A client of an organization, as the console lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgClient {
    pub client_id: String,
    pub name: String,
    pub redirect_uri: Option<String>,
    pub created_ms: i64,
}

/// The organization's clients, newest first, at most [`MAX_LISTED_CLIENTS`].
pub(crate) async fn list<D: Db>(db: &D, zoid: Zoid) -> Result<Vec<OrgClient>, StoreError> {
    db.rows(
        "SELECT client_id, name, redirect_uri, created_ms FROM oauth_clients WHERE zoid = $1 \
         ORDER BY created_ms DESC, client_id DESC LIMIT $2",
        &[&zoid.as_i64(), &MAX_LISTED_CLIENTS],
        |r| {
            Ok(OrgClient {
                client_id: r.get("client_id")?,
                name: r.get("name")?,
                redirect_uri: r.get("redirect_uri")?,
                created_ms: r.get("created_ms")?,
            })
        },
    )
    .await
}

/// Whether the grant may manage the organization's clients: it must reach the
/// organization (else it is answered as missing, like every other organization), and be
/// an admin's. An admin grant is only ever an admin's; the role is checked again here so
/// that this rule does not hang on how grants are made.
fn check_grant(grant: &Grant, zoid: Zoid) -> Result<(), WriteError> {
    if !grant.reaches_org(zoid) {
        return Err(WriteError::NotFound(format!(
            "organization {zoid} was not found"
        )));
    }
    if !matches!(grant.actor.role(), Role::Admin | Role::SuperAdmin) {
        return Err(WriteError::Forbidden(
            "only an admin may manage the organization's OAuth clients".into(),
        ));
    }
    Ok(())
}

/// The name, trimmed: 1 to [`MAX_CLIENT_NAME_CHARS`] characters, none a control character
/// (it is shown on the consent page).
fn valid_name(name: &str) -> Result<&str, RuleError> {
    let name = name.trim();
    let len = name.chars().count();
    if !(1..=MAX_CLIENT_NAME_CHARS).contains(&len) || name.chars().any(char::is_control) {
        return Err(RuleError::invalid(
            "name",
            format!("name: expected 1 to {MAX_CLIENT_NAME_CHARS} characters, none of them a control character"),
        ));
    }
    Ok(name)
}

/// A redirect URI: `http://` or `https://`, at most [`MAX_REDIRECT_URI_CHARS`]
/// characters, no white space or control character (the authorization flow compares it
/// as it is and redirects the browser to it).
fn valid_redirect_uri(uri: &str) -> Result<&str, RuleError> {
    let scheme_ok = uri.starts_with("http://") || uri.starts_with("https://");
    let bad_char = uri.chars().any(|c| c.is_whitespace() || c.is_control());
    if !scheme_ok || bad_char || uri.chars().count() > MAX_REDIRECT_URI_CHARS {
        return Err(RuleError::invalid(
            "redirectUri",
            format!(
                "redirectUri: expected an http:// or https:// URI of at most {MAX_REDIRECT_URI_CHARS} characters, without spaces or control characters"
            ),
        ));
    }
    Ok(uri)
}

/// Registers a client of the organization, audited (never its secret). The
/// organization's row is locked first so that two registrations at once cannot both stay
/// under the limit.
pub(crate) async fn register<D: Db>(
    db: &D,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    (name, redirect_uri): (&str, Option<&str>),
) -> Result<ClientCredentials, WriteError> {
    check_grant(grant, zoid)?;
    let name = valid_name(name)?;
    let redirect_uri = redirect_uri.map(valid_redirect_uri).transpose()?;
    db.lock(
        "SELECT 1 FROM orgs WHERE zoid = $1 FOR UPDATE",
        &[&zoid.as_i64()],
    )
    .await?;
    let registered = db
        .one(
            "SELECT COUNT(*) AS n FROM oauth_clients WHERE zoid = $1",
            &[&zoid.as_i64()],
            |r| r.get::<i64>("n"),
        )
        .await?;
    if registered >= MAX_CLIENTS_PER_ORG {
        return Err(RuleError::invalid(
            "clients",
            format!("an organization may register at most {MAX_CLIENTS_PER_ORG} OAuth clients; delete one first"),
        )
        .into());
    }
    let creds = insert_client(db, name, redirect_uri, Some(zoid)).await?;
    let after = json!({"clientId": creds.client_id, "name": name, "redirectUri": redirect_uri});
    audit(
        db,
        client_row(grant, meta, zoid, "registerclient"),
        &json!({}),
        &after,
    )
    .await?;
    Ok(creds)
}

/// Deletes a client of the organization, with its refresh tokens, their access tokens
/// and its codes (the foreign keys cascade); `false`, with nothing written, when the
/// organization has no such client (another organization's or the operator's included).
pub(crate) async fn delete<D: Db>(
    db: &D,
    grant: &Grant,
    meta: &RequestMeta,
    zoid: Zoid,
    client_id: &str,
) -> Result<bool, WriteError> {
    check_grant(grant, zoid)?;
    let name = db
        .row(
            "SELECT name FROM oauth_clients WHERE client_id = $1 AND zoid = $2",
            &[&client_id, &zoid.as_i64()],
            |r| r.get::<String>("name"),
        )
        .await?;
    let Some(name) = name else {
        return Ok(false);
    };
    db.exec(
        "DELETE FROM oauth_clients WHERE client_id = $1 AND zoid = $2",
        &[&client_id, &zoid.as_i64()],
    )
    .await?;
    let before = json!({"clientId": client_id, "name": name});
    audit(
        db,
        client_row(grant, meta, zoid, "deleteclient"),
        &before,
        &json!({}),
    )
    .await?;
    Ok(true)
}

/// The audit row of a change to the organization's clients: of no user or account.
fn client_row<'a>(
    grant: &'a Grant,
    meta: &'a RequestMeta,
    zoid: Zoid,
    mode: &'a str,
) -> AuditRow<'a> {
    AuditRow {
        grant,
        meta,
        zoid,
        zuid: None,
        account: None,
        mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redirect_uris_are_checked() {
        assert_eq!(valid_name("  My app ").unwrap(), "My app");
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
            let e = valid_name(bad).unwrap_err();
            assert_eq!(e.field, "name", "{bad:?}");
        }
        assert!(valid_name(&"é".repeat(100)).is_ok());
        for good in ["http://localhost:8080/cb", "https://app.example/cb?x=1"] {
            assert!(valid_redirect_uri(good).is_ok(), "{good}");
        }
        let long = format!("https://app.example/{}", "x".repeat(2000));
        for bad in [
            "ftp://x",
            "app.example/cb",
            "https://a b",
            "https://a\tb",
            &long,
        ] {
            let e = valid_redirect_uri(bad).unwrap_err();
            assert_eq!(e.field, "redirectUri", "{bad:?}");
        }
    }
}
