//! The OpenAPI 3.1 description of the API, built from the code: the modes and their keys
//! come from the domain's `Mode`, the enums from the domain's types, so a mode added there
//! shows up here (the `match` below does not compile until it is described). The committed
//! copy (`openapi.json` at the repository root) is checked against this by a test.

use mailplane_domain::{IdentityMode, Mode, Role, SmtpConnection};
use serde_json::{json, Map, Value};

fn strings(values: Vec<&'static str>) -> Value {
    json!({ "type": "string", "enum": values })
}

/// An id as requests may send it: a JSON number or a string of digits.
fn lenient_id() -> Value {
    json!({ "oneOf": [ { "type": "integer", "minimum": 1 }, { "type": "string", "pattern": "^[0-9]{1,19}$" } ] })
}

fn lenient_bool() -> Value {
    json!({ "oneOf": [ { "type": "boolean" }, { "type": "string", "enum": ["true", "false", "TRUE", "FALSE", "True", "False"] } ] })
}

fn send_mail_detail() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["displayName", "mode"],
        "properties": {
            "fromAddress": { "type": "string", "format": "email" },
            "displayName": { "type": "string", "minLength": 1, "maxLength": 100 },
            "mode": strings(IdentityMode::ALL.iter().map(|m| m.as_str()).collect()),
            "serverName": { "type": "string", "minLength": 1, "maxLength": 253 },
            "serverPort": { "oneOf": [ { "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string", "pattern": "^[0-9]{1,5}$" } ] },
            "userName": { "type": "string", "minLength": 1, "maxLength": 320 },
            "password": { "type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": true },
            "smtpConnection": strings(SmtpConnection::ALL.iter().map(|m| m.as_str()).collect()),
        }
    })
}

/// The body of one mode: its own keys, plus `zuid` and `mode`.
fn mode_body(mode: Mode) -> Value {
    let (required, props): (Vec<&str>, Value) = match mode {
        Mode::AddSendMailDetails => (
            vec!["sendMailDetails"],
            json!({ "sendMailDetails": { "oneOf": [ send_mail_detail(), { "type": "array", "minItems": 1, "maxItems": 50, "items": send_mail_detail() } ] } }),
        ),
        Mode::DeleteSendMailDetails => (
            vec![],
            json!({ "sendMailId": lenient_id(), "fromAddress": { "type": "string", "format": "email" } }),
        ),
        Mode::EmailUpdate => (
            vec!["emailAddress"],
            json!({ "emailAddress": { "type": "string", "format": "email" } }),
        ),
        Mode::EnableMailAccount | Mode::DisableMailAccount => (vec![], json!({})),
        Mode::MailAccountOrderUpdate => (
            vec!["accList"],
            json!({ "accList": { "oneOf": [ { "type": "string", "pattern": "^[0-9]{1,19}(,[0-9]{1,19})*$" }, { "type": "array", "minItems": 1, "items": lenient_id() } ] } }),
        ),
        Mode::UpdateOutgoingStatus => (
            vec!["outgoingBlocked"],
            json!({ "outgoingBlocked": lenient_bool() }),
        ),
        Mode::UpdateIncomingStatus => (
            vec!["incomingBlocked"],
            json!({ "incomingBlocked": lenient_bool() }),
        ),
    };
    let mut properties = Map::new();
    properties.insert("zuid".into(), lenient_id());
    properties.insert("mode".into(), json!({ "const": mode.as_str() }));
    if let Value::Object(p) = props {
        properties.extend(p);
    }
    let mut required: Vec<&str> = required;
    required.insert(0, "mode");
    json!({
        "title": mode.as_str(),
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok_response(data: Option<Value>) -> Value {
    let mut schema = json!({ "type": "object", "required": ["status"], "properties": { "status": { "$ref": "#/components/schemas/Status" } } });
    if let Some(d) = data {
        schema["properties"]["data"] = d;
        schema["required"] = json!(["status", "data"]);
    }
    json!({ "description": "success", "content": { "application/json": { "schema": schema } } })
}

/// The error answers every authenticated operation can give.
fn responses(ok_code: &str, ok: Value, extra: &[(&str, &str)]) -> Value {
    let mut r = Map::new();
    r.insert(ok_code.into(), ok);
    for (code, what) in [
        ("400", "invalid input: missing Authorization header, body, value or rule"),
        ("401", "invalid, expired or revoked token, or a token without the needed scope"),
        ("403", "the caller's role does not allow this"),
        ("404", "not found (or out of the caller's reach), unknown URL, or a key the operation does not take"),
        ("405", "method not allowed"),
        ("413", "body over 64 KiB"),
        ("503", "the database cannot be reached"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        r.insert(code.into(), error_response(what));
    }
    Value::Object(r)
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

pub fn document() -> Value {
    let account_ref = json!({ "$ref": "#/components/schemas/Account" });
    let update_body = json!({
        "required": true,
        "content": { "application/json": { "schema": { "oneOf": Mode::ALL.iter().map(|m| mode_body(*m)).collect::<Vec<_>>() } } }
    });
    let update_ok = ok_response(Some(
        json!({ "type": "array", "items": { "$ref": "#/components/schemas/SendMailDetail" } }),
    ));
    let mut update_ok_any = update_ok.clone();
    update_ok_any["content"]["application/json"]["schema"]["required"] = json!(["status"]);
    let auth = json!([{ "zohoOAuthToken": [] }]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mailplane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A self-hosted control plane for mail accounts, wire-compatible with the Zoho Mail Accounts API. The update endpoint's `mode` selects the operation; `addsendmaildetails` and `deletesendmaildetails` answer the account's identities in `data`, the other modes the status only.",
        },
        "paths": {
            "/api/accounts": {
                "get": { "operationId": "listOwnAccounts", "security": auth, "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": account_ref }))), &[]) }
            },
            "/api/accounts/{accountId}": {
                "parameters": [ path_param("accountId", "the account id (a positive integer)") ],
                "get": { "operationId": "getOwnAccount", "security": auth, "responses": responses("200", ok_response(Some(account_ref.clone())), &[]) },
                "put": { "operationId": "updateOwnAccount", "security": auth, "requestBody": update_body, "responses": responses("200", update_ok_any.clone(), &[("409", "conflict with other data")]) }
            },
            "/api/organization": {
                "get": { "operationId": "getOwnOrganization", "security": auth, "responses": responses("200", ok_response(Some(json!({ "$ref": "#/components/schemas/Organization" }))), &[]) }
            },
            "/api/organization/{zoid}": {
                "parameters": [ path_param("zoid", "the organization id") ],
                "get": { "operationId": "getOrganization", "security": auth, "responses": responses("200", ok_response(Some(json!({ "$ref": "#/components/schemas/Organization" }))), &[]) }
            },
            "/api/organization/{zoid}/accounts": {
                "parameters": [ path_param("zoid", "the organization id") ],
                "get": {
                    "operationId": "listOrganizationAccounts",
                    "security": auth,
                    "parameters": [
                        { "name": "start", "in": "query", "schema": { "type": "integer", "minimum": 0 } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }
                    ],
                    "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": account_ref }))), &[])
                },
                "post": {
                    "operationId": "addUser",
                    "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewUser" } } } },
                    "responses": responses("201", json!({ "description": "created", "content": { "application/json": { "schema": { "type": "object", "required": ["status", "data"], "properties": { "status": { "$ref": "#/components/schemas/Status" }, "data": account_ref } } } } }), &[("409", "the address belongs to another account")])
                },
                "delete": {
                    "operationId": "deleteUsers",
                    "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": {
                            "accountList": { "oneOf": [ { "type": "array", "items": lenient_id() }, { "type": "string" } ] },
                            "emailList": { "oneOf": [ { "type": "array", "items": { "type": "string", "format": "email" } }, { "type": "string" } ] }
                        }
                    } } } },
                    "responses": responses("200", ok_response(None), &[])
                }
            },
            "/api/organization/{zoid}/accounts/{account}": {
                "parameters": [ path_param("zoid", "the organization id"), path_param("account", "GET: a user's zuid or email address; PUT: an account id") ],
                "get": { "operationId": "getOrganizationUserAccount", "security": auth, "responses": responses("200", ok_response(Some(account_ref.clone())), &[]) },
                "put": { "operationId": "updateOrganizationAccount", "security": auth, "requestBody": update_body, "responses": responses("200", update_ok_any, &[("409", "conflict with other data")]) }
            }
        },
        "components": {
            "securitySchemes": {
                "zohoOAuthToken": { "type": "apiKey", "in": "header", "name": "Authorization", "description": "`Zoho-oauthtoken <token>` or `Bearer <token>`" }
            },
            "schemas": {
                "Status": { "type": "object", "required": ["code", "description"], "properties": { "code": { "type": "integer" }, "description": { "type": "string" } } },
                "Error": {
                    "type": "object",
                    "required": ["status", "data"],
                    "properties": {
                        "status": { "$ref": "#/components/schemas/Status" },
                        "data": { "type": "object", "required": ["errorCode", "moreInfo"], "properties": { "errorCode": { "type": "string" }, "moreInfo": { "type": "string" } } }
                    }
                },
                "SendMailDetail": {
                    "type": "object",
                    "required": ["sendMailId", "fromAddress", "displayName", "mode", "validated", "validationRequired", "validationState", "status"],
                    "properties": {
                        "sendMailId": { "type": "string" },
                        "fromAddress": { "type": "string" },
                        "displayName": { "type": "string" },
                        "mode": strings(IdentityMode::ALL.iter().map(|m| m.as_str()).collect()),
                        "serverName": { "type": "string" },
                        "serverPort": { "type": "integer" },
                        "userName": { "type": "string" },
                        "smtpConnection": strings(SmtpConnection::ALL.iter().map(|m| m.as_str()).collect()),
                        "validated": { "type": "boolean" },
                        "validationRequired": { "type": "boolean" },
                        "validationState": { "type": "string" },
                        "status": { "type": "boolean" }
                    }
                },
                "Account": {
                    "type": "object",
                    "required": ["accountId", "zuid", "type", "primaryEmailAddress", "emailAddress", "sendMailDetails", "enabled", "outgoingBlocked", "incomingBlocked", "sequence", "URI"],
                    "properties": {
                        "accountId": { "type": "string" }, "zuid": { "type": "integer" }, "zoid": { "type": "integer" },
                        "accountName": { "type": "string" }, "accountDisplayName": { "type": "string" }, "displayName": { "type": "string" },
                        "firstName": { "type": "string" }, "lastName": { "type": "string" },
                        "role": strings(Role::ALL.iter().map(|r| r.as_str()).collect()),
                        "type": { "type": "string", "enum": ["ZOHO_ACCOUNT", "POP_ACCOUNT", "IMAP_ACCOUNT"] },
                        "primaryEmailAddress": { "type": "string" }, "mailboxAddress": { "type": "string" }, "incomingUserName": { "type": "string" },
                        "emailAddress": { "type": "array", "items": { "type": "object", "required": ["mailId", "isPrimary", "isAlias", "isConfirmed"], "properties": {
                            "mailId": { "type": "string" }, "isPrimary": { "type": "boolean" }, "isAlias": { "type": "boolean" }, "isConfirmed": { "type": "boolean" } } } },
                        "sendMailDetails": { "type": "array", "items": { "$ref": "#/components/schemas/SendMailDetail" } },
                        "enabled": { "type": "boolean" }, "status": { "type": "boolean" }, "mailboxStatus": { "type": "string", "enum": ["enabled", "disabled"] },
                        "incomingBlocked": { "type": "boolean" }, "outgoingBlocked": { "type": "boolean" }, "imapAccessEnabled": { "type": "boolean" },
                        "popAccessEnabled": { "type": "boolean" }, "activeSyncEnabled": { "type": "boolean" },
                        "sequence": { "type": "integer" }, "accountCreationTime": { "type": "integer" }, "mailboxCreationTime": { "type": "integer" },
                        "lastLogin": { "type": "integer" }, "timeZone": { "type": "string" }, "language": { "type": "string" }, "country": { "type": "string" },
                        "URI": { "type": "string" }
                    }
                },
                "Organization": {
                    "type": "object",
                    "required": ["zoid", "orgName", "primaryDomainName", "domains", "usersCount", "mailboxCount", "URI"],
                    "properties": {
                        "zoid": { "type": "integer" }, "orgName": { "type": "string" }, "primaryDomainName": { "type": "string" },
                        "domains": { "type": "array", "items": { "type": "string" } }, "usersCount": { "type": "integer" }, "mailboxCount": { "type": "integer" },
                        "superAdmin": { "type": ["string", "null"] }, "orgCreationTime": { "type": "integer" }, "URI": { "type": "string" }
                    }
                },
                "NewUser": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["primaryEmailAddress", "password"],
                    "properties": {
                        "primaryEmailAddress": { "type": "string", "format": "email" },
                        "password": { "type": "string", "minLength": 8, "maxLength": 256, "writeOnly": true },
                        "firstName": { "type": "string", "maxLength": 100 }, "lastName": { "type": "string", "maxLength": 100 },
                        "displayName": { "type": "string", "maxLength": 100 },
                        "role": strings(Role::ALL.iter().map(|r| r.as_str()).collect()),
                        "country": { "type": "string", "maxLength": 10 }, "language": { "type": "string", "maxLength": 10 }, "timeZone": { "type": "string", "maxLength": 64 }
                    }
                }
            }
        }
    });
    add_other_paths(&mut doc, &auth);
    doc
}

/// The audit trail, the operator's endpoints and the OAuth endpoints.
fn add_other_paths(doc: &mut Value, auth: &Value) {
    let paths = &mut doc["paths"];
    let entry = json!({
        "type": "object",
        "required": ["id", "time", "actor", "target", "mode", "before", "after"],
        "properties": {
            "id": { "type": "integer" }, "time": { "type": "integer" }, "requestId": { "type": ["string", "null"] },
            "actor": { "type": "object", "properties": { "zuid": { "type": ["integer", "null"] }, "tokenId": { "type": ["integer", "null"] } } },
            "clientAddress": { "type": ["string", "null"] },
            "target": { "type": "object", "properties": { "zuid": { "type": ["integer", "null"] }, "accountId": { "type": ["string", "null"] } } },
            "mode": { "type": "string" }, "before": {}, "after": {}
        }
    });
    paths["/api/organization/{zoid}/auditlog"] = json!({
        "parameters": [ path_param("zoid", "the organization id") ],
        "get": {
            "operationId": "getAuditLog",
            "security": auth,
            "parameters": [
                { "name": "start", "in": "query", "schema": { "type": "integer", "minimum": 0 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } },
                { "name": "accountId", "in": "query", "schema": { "type": "string", "pattern": "^[0-9]{1,19}$" } },
                { "name": "since", "in": "query", "schema": { "type": "integer", "minimum": 0 } }
            ],
            "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": entry }))), &[])
        }
    });
    let status_ok = json!({ "description": "ok", "content": { "application/json": { "schema": { "type": "object", "properties": { "status": { "type": "string" } } } } } });
    paths["/health"] =
        json!({ "get": { "operationId": "health", "responses": { "200": status_ok } } });
    paths["/ready"] = json!({ "get": { "operationId": "ready", "responses": { "200": status_ok, "503": error_response("the database cannot be reached") } } });
    paths["/metrics"] = json!({ "get": { "operationId": "metrics", "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } } } } });
    paths["/api/openapi.json"] = json!({ "get": { "operationId": "openapi", "responses": { "200": { "description": "this document", "content": { "application/json": { "schema": { "type": "object" } } } } } } });
    let form = |props: Value| json!({ "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object", "properties": props } } } });
    let html = json!({ "text/html": { "schema": { "type": "string" } } });
    let token_answer = json!({ "description": "tokens, or `{\"error\": …}` (Zoho answers refusals with 200)", "content": { "application/json": { "schema": {
        "type": "object",
        "properties": {
            "access_token": { "type": "string" }, "refresh_token": { "type": "string" }, "api_domain": { "type": "string" },
            "token_type": { "type": "string" }, "expires_in": { "type": "integer" }, "scope": { "type": "string" }, "error": { "type": "string" }
        }
    } } } });
    let auth_params: Vec<Value> = [
        "response_type",
        "client_id",
        "scope",
        "redirect_uri",
        "access_type",
        "state",
    ]
    .iter()
    .map(|n| json!({ "name": n, "in": "query", "schema": { "type": "string" } }))
    .collect();
    paths["/oauth/v2/auth"] = json!({
        "get": {
            "operationId": "oauthAuthorize",
            "parameters": auth_params,
            "responses": { "200": { "description": "the sign-in page", "content": html }, "302": { "description": "back to the client with an error" }, "400": { "description": "unknown client or redirect URI", "content": html } }
        },
        "post": {
            "operationId": "oauthSignIn",
            "requestBody": form(json!({ "email": { "type": "string" }, "password": { "type": "string" }, "client_id": { "type": "string" }, "scope": { "type": "string" }, "redirect_uri": { "type": "string" }, "response_type": { "type": "string" }, "state": { "type": "string" } })),
            "responses": { "200": { "description": "the consent page, or the sign-in page again", "content": html }, "302": { "description": "back to the client with an error" }, "400": { "description": "unknown client", "content": html }, "429": { "description": "too many failed sign-ins", "content": html } }
        }
    });
    paths["/oauth/v2/auth/consent"] = json!({ "post": {
        "operationId": "oauthConsent",
        "requestBody": form(json!({ "ticket": { "type": "string" }, "state": { "type": "string" }, "decision": { "type": "string", "enum": ["approve", "deny"] } })),
        "responses": { "302": { "description": "back to the client with the code or access_denied" }, "400": { "description": "expired or used", "content": html } }
    } });
    paths["/oauth/v2/token"] = json!({ "post": {
        "operationId": "oauthToken",
        "requestBody": form(json!({ "grant_type": { "type": "string" }, "client_id": { "type": "string" }, "client_secret": { "type": "string" }, "code": { "type": "string" }, "redirect_uri": { "type": "string" }, "refresh_token": { "type": "string" } })),
        "responses": { "200": token_answer, "503": { "description": "the database cannot be reached" } }
    } });
    paths["/oauth/v2/token/revoke"] = json!({ "post": {
        "operationId": "oauthRevoke",
        "parameters": [ { "name": "token", "in": "query", "schema": { "type": "string" } } ],
        "responses": { "200": { "description": "revoked (also for an unknown token)", "content": { "application/json": { "schema": { "type": "object", "properties": { "status": { "type": "string" } } } } } } }
    } });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed copy must be what the code generates: regenerate it with
    /// `cargo run -q -- openapi > openapi.json` after changing the API.
    #[test]
    fn committed_document_matches_the_code() {
        let committed: Value = serde_json::from_str(include_str!("../../../openapi.json"))
            .expect("openapi.json is JSON");
        assert!(
            committed == document(),
            "openapi.json is stale: run `cargo run -q -- openapi > openapi.json`"
        );
    }

    #[test]
    fn every_mode_has_a_body_schema() {
        let doc = document();
        let bodies = &doc["paths"]["/api/accounts/{accountId}"]["put"]["requestBody"]["content"]
            ["application/json"]["schema"]["oneOf"];
        let titles: Vec<&str> = bodies
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            Mode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );
    }
}
