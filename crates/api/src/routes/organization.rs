//! `/api/organization…`: the organization, its users' accounts, adding and removing users.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use mailplane_domain::{
    assignable_role, expiry_ms, Access, EmailAddress, ProfileField, Role, Secret, UserProfile,
    Zoid, Zuid, MAX_USER_EXPIRY_DAYS,
};
use mailplane_store::{secrets, NewUser, RequestMeta, UserRef};
use serde_json::Value;

use super::{body, created, path_id, success, success_with, Segments};
use crate::error::ApiError;
use crate::lenient::{self, Object};
use crate::metrics::ModeLabel;
use crate::{auth, view, AppState};

fn org_not_found(zoid: Zoid) -> ApiError {
    ApiError::NotFound(format!("organization {zoid} was not found"))
}

/// Zoho: Get Organization Details (the caller's own organization).
pub async fn get_own_org(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let grant = auth::admin(&state.store, &headers, Access::Read).await?;
    let zoid = grant.actor().zoid();
    let org = state
        .store
        .organization(&grant, zoid)
        .await?
        .ok_or_else(|| org_not_found(zoid))?;
    Ok(success_with(view::organization(&org, &state.public_url)))
}

/// Zoho: Get Organization Details.
pub async fn get_org(
    State(state): State<AppState>,
    Segments(zoid): Segments<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Read).await?;
    let org = state
        .store
        .organization(&grant, zoid)
        .await?
        .ok_or_else(|| org_not_found(zoid))?;
    Ok(success_with(view::organization(&org, &state.public_url)))
}

/// The `key=value` pairs of a raw query string (a key alone has an empty value).
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// `start` and `limit` of a page, from the raw query string.
fn page(query: Option<&str>) -> Result<(u32, u32), ApiError> {
    let (mut start, mut limit) = (0u32, 10u32);
    for (k, v) in query_pairs(query) {
        match k {
            "start" => {
                start = v.parse().map_err(|_| {
                    ApiError::Pattern("start must be an integer of 0 or more".into())
                })?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=200).contains(l))
                    .ok_or_else(|| {
                        ApiError::Pattern("limit must be an integer from 1 to 200".into())
                    })?
            }
            _ => {}
        }
    }
    Ok((start, limit))
}

/// The audit filters of the query string: `accountId`, `since` (epoch milliseconds), and
/// whether `type=security` asks for the refused requests instead of the changes.
struct AuditFilters {
    account: Option<mailplane_domain::AccountId>,
    since: Option<i64>,
    security: bool,
}

fn audit_filters(query: Option<&str>) -> Result<AuditFilters, ApiError> {
    let (mut account, mut since, mut security) = (None, None, false);
    for (k, v) in query_pairs(query) {
        match k {
            "accountId" if !v.is_empty() => {
                account = Some(v.parse().map_err(|_| {
                    ApiError::Pattern("accountId must be a positive integer id".into())
                })?)
            }
            "since" if !v.is_empty() => {
                since = Some(v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                    ApiError::Pattern("since must be a time in epoch milliseconds".into())
                })?)
            }
            "type" => security |= v == "security",
            _ => {}
        }
    }
    Ok(AuditFilters {
        account,
        since,
        security,
    })
}

/// The audit trail of the organization, newest first (a mailplane addition).
pub async fn audit_log(
    State(state): State<AppState>,
    Segments(zoid): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Read).await?;
    let (start, limit) = page(query.as_deref())?;
    let filters = audit_filters(query.as_deref())?;
    let q = mailplane_store::AuditQuery {
        start,
        limit,
        account: filters.account,
        since_ms: filters.since,
        ..Default::default()
    };
    if filters.security {
        let events = state
            .store
            .security_events(&grant, zoid, q)
            .await?
            .ok_or_else(|| org_not_found(zoid))?;
        return Ok(success_with(Value::Array(
            events.iter().map(view::security_event).collect(),
        )));
    }
    let entries = state
        .store
        .audit_log(&grant, zoid, q)
        .await?
        .ok_or_else(|| org_not_found(zoid))?;
    Ok(success_with(Value::Array(
        entries.iter().map(view::audit_entry).collect(),
    )))
}

/// Zoho: Get All Org User Details.
pub async fn list_org_accounts(
    State(state): State<AppState>,
    Segments(zoid): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Read).await?;
    let (start, limit) = page(query.as_deref())?;
    let accounts = state
        .store
        .org_accounts(&grant, zoid, start, limit)
        .await?
        .ok_or_else(|| org_not_found(zoid))?;
    Ok(success_with(
        accounts
            .iter()
            .map(|a| view::account(a, &state.public_url))
            .collect::<Vec<_>>(),
    ))
}

/// Zoho: Get Org User Details (by zuid or email address).
pub async fn get_org_account(
    State(state): State<AppState>,
    Segments((zoid, key)): Segments<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let user = if key.bytes().all(|b| b.is_ascii_digit()) {
        UserRef::Zuid(path_id(&key)?)
    } else {
        UserRef::Email(EmailAddress::parse(&key).map_err(|_| ApiError::UrlNotConfigured)?)
    };
    let grant = auth::admin(&state.store, &headers, Access::Read).await?;
    let account = state
        .store
        .org_user_account(&grant, zoid, user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {key} was not found")))?;
    Ok(success_with(view::account(&account, &state.public_url)))
}

/// Every key of Zoho's Add User page.
const CREATE_KEYS: &[&str] = &[
    "primaryEmailAddress",
    "password",
    "firstName",
    "lastName",
    "displayName",
    "role",
    "country",
    "language",
    "timeZone",
    "userExpiry",
    "oneTimePassword",
    "groupMailList",
    "employeeId",
    "department",
    "designation",
    "mobileNumber",
    "extension",
];

fn new_user(obj: &Object) -> Result<(NewUser, Secret), ApiError> {
    lenient::only_keys(obj, CREATE_KEYS, "")?;
    let optional = |k: &str, max: usize| {
        lenient::get(obj, k)
            .map(|v| lenient::text(v, k, max))
            .transpose()
    };
    let password = lenient::password(lenient::require(obj, "password", "password")?, "password")?;
    // Groups do not exist yet: an empty list asks for nothing, any address in it for a
    // membership that cannot be given, which is refused rather than dropped.
    if let Some(v) = lenient::get(obj, "groupMailList") {
        if !lenient::list(v, "groupMailList")?.is_empty() {
            return Err(ApiError::Invalid(
                "groupMailList: groups are not supported yet; send an empty list or leave it out"
                    .into(),
            ));
        }
    }
    let expires_ms = lenient::get(obj, "userExpiry")
        .map(|v| {
            let days = lenient::whole(v, "userExpiry", (1, MAX_USER_EXPIRY_DAYS))?;
            expiry_ms(mailplane_store::now_ms(), days).map_err(|e| ApiError::Pattern(e.message))
        })
        .transpose()?;
    let mut profile = UserProfile::default();
    for field in ProfileField::ALL {
        if let Some(v) = lenient::get(obj, field.key()) {
            let text = lenient::text_or_number(v, field.key())?;
            profile.set(
                field,
                field
                    .parse(&text)
                    .map_err(|e| ApiError::Pattern(e.message))?,
            );
        }
    }
    let user = NewUser {
        primary_email: lenient::email(
            lenient::require(obj, "primaryEmailAddress", "primaryEmailAddress")?,
            "primaryEmailAddress",
        )?,
        password_hash: None,
        first_name: optional("firstName", 100)?.unwrap_or_default(),
        last_name: optional("lastName", 100)?.unwrap_or_default(),
        display_name: optional("displayName", 100)?,
        role: lenient::get(obj, "role")
            .map(|v| lenient::word(v, "role", Role::parse, &Role::choices()))
            .transpose()?
            .unwrap_or(Role::Member),
        country: optional("country", 10)?.unwrap_or_else(|| "us".into()),
        language: optional("language", 10)?.unwrap_or_else(|| "en".into()),
        time_zone: optional("timeZone", 64)?.unwrap_or_else(|| "UTC".into()),
        one_time_password: lenient::get(obj, "oneTimePassword")
            .map(|v| lenient::boolean(v, "oneTimePassword"))
            .transpose()?
            .unwrap_or(false),
        expires_ms,
        profile,
    };
    Ok((user, password))
}

/// Zoho: Add User to Organization.
pub async fn create_account(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Segments(zoid): Segments<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Create).await?;
    let (mut user, password) = new_user(&lenient::parse_object(&body(raw)?)?)?;
    if !grant.reaches_org(zoid) {
        return Err(org_not_found(zoid));
    }
    // argon2 is deliberately slow: hash in one of the bounded slots (off the async runtime)
    // and outside the write lock.
    let hash = state
        .password_work
        .run(move || secrets::hash_password(password.expose()))
        .await??;
    user.password_hash = Some(hash);
    let account = state.store.create_user(&grant, &meta, zoid, user).await?;
    Ok(created(view::account(&account, &state.public_url)))
}

fn user_refs(obj: &Object) -> Result<Vec<UserRef>, ApiError> {
    lenient::only_keys(obj, &["accountList", "emailList"], "")?;
    let mut refs = Vec::new();
    if let Some(v) = lenient::get(obj, "accountList") {
        for item in lenient::list(v, "accountList")? {
            refs.push(UserRef::Zuid(lenient::id::<Zuid>(&item, "accountList")?));
        }
    }
    if let Some(v) = lenient::get(obj, "emailList") {
        for item in lenient::list(v, "emailList")? {
            refs.push(UserRef::Email(lenient::email(&item, "emailList")?));
        }
    }
    if refs.is_empty() {
        return Err(ApiError::Missing("accountList".into()));
    }
    Ok(refs)
}

/// Zoho: Delete User Accounts.
pub async fn delete_accounts(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Segments(zoid): Segments<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Delete).await?;
    let users = user_refs(&lenient::parse_object(&body(raw)?)?)?;
    state.store.delete_users(&grant, &meta, zoid, users).await?;
    Ok(success())
}

/// The modes of `PUT /api/organization/{zoid}/accounts` (no id in the path), as Zoho
/// spells them.
const ORG_ACCOUNTS_MODES: &[&str] = &["changeRole"];

/// At most this many users in one `changeRole`: the largest page of the account list.
const MAX_USERS_PER_ROLE_CHANGE: usize = 200;

/// The body of `changeRole`: the users (zuids as numbers or strings, an array or a
/// comma-separated string) and the role they get.
fn role_change(obj: &Object) -> Result<(Vec<Zuid>, Role), ApiError> {
    let mode = lenient::require(obj, "mode", "mode")?;
    if mode.as_str() != Some("changeRole") {
        return Err(ApiError::UnknownMode(format!(
            "mode {mode} is not supported on this URL; supported modes: {}",
            ORG_ACCOUNTS_MODES.join(", ")
        )));
    }
    lenient::only_keys(obj, &["mode", "userList", "role"], "")?;
    let users = lenient::list(lenient::require(obj, "userList", "userList")?, "userList")?;
    if users.is_empty() || users.len() > MAX_USERS_PER_ROLE_CHANGE {
        return Err(ApiError::Pattern(format!(
            "userList must name 1 to {MAX_USERS_PER_ROLE_CHANGE} users by zuid"
        )));
    }
    let zuids = users
        .iter()
        .map(|v| lenient::id::<Zuid>(v, "userList"))
        .collect::<Result<Vec<_>, _>>()?;
    let role = lenient::word(
        lenient::require(obj, "role", "role")?,
        "role",
        assignable_role,
        "admin, member (user is read as member)",
    )?;
    Ok((zuids, role))
}

/// Zoho: Change the Role of a User (`mode` `changeRole`), the only mode of this URL.
pub async fn update_accounts(
    State(state): State<AppState>,
    Extension(meta): Extension<RequestMeta>,
    Segments(zoid): Segments<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let zoid: Zoid = path_id(&zoid)?;
    let grant = auth::admin(&state.store, &headers, Access::Update).await?;
    let (zuids, role) = role_change(&lenient::parse_object(&body(raw)?)?)?;
    state
        .store
        .change_roles(&grant, &meta, zoid, zuids.clone(), role)
        .await?;
    // Each user once, in the order given, as Zoho answers: `{"<zuid>": true}`.
    let mut answered: Vec<Zuid> = Vec::new();
    for z in zuids {
        if !answered.contains(&z) {
            answered.push(z);
        }
    }
    let data: Vec<Value> = answered
        .iter()
        .map(|z| serde_json::json!({ z.to_string(): true }))
        .collect();
    let mut resp = success_with(data);
    resp.extensions_mut().insert(ModeLabel("changeRole"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds() {
        assert_eq!(page(None).unwrap(), (0, 10));
        assert_eq!(page(Some("start=5&limit=200")).unwrap(), (5, 200));
        assert!(page(Some("limit=0")).is_err());
        assert!(page(Some("limit=201")).is_err());
        assert!(page(Some("start=-1")).is_err());
    }
}
