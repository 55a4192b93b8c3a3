//! The OpenAPI 3.1 description of the API, built from the code: the modes and their
//! required keys come from the domain's table of modes (`Mode::spec`), the enums from the
//! domain's types, so a mode added there shows up here (`mode_body` does not compile until
//! its body is described, and a test holds the described keys to the table). The committed
//! copy (`openapi.json` at the repository root) is checked against this by a test.

use mailplane_domain::{
    Answer, IdentityMode, Mode, PathId, ProfileField, Role, SmtpConnection,
    MAX_FORWARDS_PER_ACCOUNT, MAX_USER_EXPIRY_DAYS,
};
use serde_json::{json, Map, Value};

fn strings(values: Vec<&'static str>) -> Value {
    json!({ "type": "string", "enum": values })
}

/// The alternatives of a regular expression for the decimal form of 1..=`max`, without
/// leading zeros: shorter numbers, then the numbers of `max`'s length digit by digit.
fn up_to(max: u64) -> Vec<String> {
    let m = max.to_string();
    let digits: Vec<u32> = m.chars().filter_map(|c| c.to_digit(10)).collect();
    let mut alts = Vec::new();
    match m.len() {
        1 => {}
        2 => alts.push("[1-9]".to_string()),
        n => alts.push(format!("[1-9][0-9]{{0,{}}}", n - 2)),
    }
    for (i, &d) in digits.iter().enumerate() {
        let low = u32::from(i == 0);
        if d > low {
            let class = if d - 1 == low {
                low.to_string()
            } else {
                format!("[{low}-{}]", d - 1)
            };
            let rest = m.len() - i - 1;
            let tail = match rest {
                0 => String::new(),
                1 => "[0-9]".to_string(),
                r => format!("[0-9]{{{r}}}"),
            };
            alts.push(format!("{}{class}{tail}", &m[..i]));
        }
    }
    alts.push(m);
    alts
}

/// An id as a string of digits: 1 to 2^63-1 (ids are 64-bit positive integers that SQL
/// stores signed).
fn id_digits() -> String {
    format!("(?:{})", up_to(i64::MAX as u64).join("|"))
}

fn id_pattern() -> String {
    format!("^{}$", id_digits())
}

/// An id as responses and path segments carry it: a string of digits.
fn id_string() -> Value {
    json!({ "type": "string", "pattern": id_pattern() })
}

/// An id as requests may send it: a JSON number or a string of digits.
fn lenient_id() -> Value {
    json!({ "oneOf": [ { "type": "integer", "minimum": 1, "maximum": i64::MAX }, id_string() ] })
}

/// `true`/`false`, or the same words as strings in any letter case.
fn lenient_bool() -> Value {
    json!({ "oneOf": [ { "type": "boolean" }, { "type": "string", "pattern": "^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$" } ] })
}

/// An address as the server parses it: a dot-atom local part and a host name of two or
/// more labels, the last one not all digits. The expression is narrower than the server,
/// so that its length stays within the limits without lookarounds: up to three atoms of
/// 16 characters in the local part (the server's limit is 64), up to five labels of 32
/// (63) with the last starting with a letter, 216 characters in all (254).
fn email_regex() -> String {
    let atom = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,16}";
    let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?";
    let top = "[A-Za-z](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?";
    format!("{atom}(?:\\.{atom}){{0,2}}@(?:{label}\\.){{1,4}}{top}")
}

fn email() -> Value {
    json!({ "type": "string", "format": "email", "maxLength": 254, "pattern": format!("^{}$", email_regex()) })
}

/// A list in one string: items separated by commas.
fn comma_list(item: &str) -> String {
    format!("^{item}(?:,{item})*$")
}

/// The same, or an empty string (an empty list).
fn comma_list_or_empty(item: &str) -> String {
    format!("^(?:{item}(?:,{item})*)?$")
}

/// One address, or an array of 1 to 50 (`emailAlias`).
fn email_list() -> Value {
    json!({ "oneOf": [ email(), { "type": "array", "minItems": 1, "maxItems": 50, "items": email() } ] })
}

/// A port: a number or a string of digits, 1 to 65535.
fn port() -> Value {
    json!({ "oneOf": [ { "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string", "pattern": format!("^(?:{})$", up_to(65535).join("|")) } ] })
}

/// An optional key: the server reads `null` as the key's absence.
fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [ schema, { "type": "null" } ] })
}

/// A text field of 1 to `max` characters.
fn text(max: u32) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max })
}

/// A profile field of a new user, as the server takes it: its text (a number is read as
/// its digits), in the field's form.
fn profile_text(field: ProfileField) -> Value {
    // Narrower than the server where that keeps the expression short: no surrounding
    // spaces (the server trims them).
    let pattern = match field {
        ProfileField::EmployeeId => {
            "^[\\p{L}\\p{N}._/#-](?:[\\p{L}\\p{N} ._/#-]{0,48}[\\p{L}\\p{N}._/#-])?$"
        }
        ProfileField::Department | ProfileField::Designation => {
            "^[^\\p{Cc}\\s](?:[^\\p{Cc}]{0,98}[^\\p{Cc}\\s])?$"
        }
        ProfileField::MobileNumber => "^\\+?[0-9]{4,20}$",
        ProfileField::Extension => "^[0-9]{1,10}$",
    };
    let mut forms = vec![json!({ "type": "string", "pattern": pattern })];
    // A number is taken as its digits, for every field: any whose digits fit it.
    let (least, most) = match field {
        ProfileField::MobileNumber => (1000, u64::MAX),
        ProfileField::Extension => (0, 9_999_999_999),
        _ => (0, u64::MAX),
    };
    forms.push(json!({ "type": "integer", "minimum": least, "maximum": most }));
    json!({ "oneOf": forms, "description": field.rule() })
}

/// One `sendMailDetails` element. Its `mode` decides the other fields: `mailbox` may leave
/// out `fromAddress` (the primary address), `extfrom` needs the relay fields, which no
/// other mode takes.
fn send_mail_detail() -> Value {
    let relay_fields = [
        "serverName",
        "serverPort",
        "userName",
        "password",
        "smtpConnection",
    ];
    let variant = |title: &str, modes: Vec<&'static str>, required: Vec<&str>, relay: bool| {
        let from = if required.contains(&"fromAddress") {
            email()
        } else {
            nullable(email())
        };
        let mut props =
            json!({ "fromAddress": from, "displayName": text(100), "mode": strings(modes) });
        for field in relay_fields {
            // Other modes take no relay field (`null` is its absence).
            props[field] = json!({ "type": "null" });
        }
        if relay {
            props["serverName"] = json!({ "type": "string", "pattern": "^[A-Za-z0-9.:\\[\\]-]{1,253}$", "description": "a host name or IP address; loopback, private and link-local addresses are refused unless the operator allows them" });
            props["serverPort"] = port();
            props["userName"] = text(320);
            props["password"] =
                json!({ "type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": true });
            props["smtpConnection"] = nullable(strings(
                SmtpConnection::ALL.iter().map(|m| m.as_str()).collect(),
            ));
        }
        json!({ "title": title, "type": "object", "additionalProperties": false, "required": required, "properties": props })
    };
    let others: Vec<&'static str> = IdentityMode::ALL
        .iter()
        .filter(|m| !matches!(m, IdentityMode::Mailbox | IdentityMode::ExtFrom))
        .map(|m| m.as_str())
        .collect();
    json!({ "oneOf": [
        variant("mailbox", vec![IdentityMode::Mailbox.as_str()], vec!["displayName", "mode"], false),
        variant("address", others, vec!["fromAddress", "displayName", "mode"], false),
        variant("extfrom", vec![IdentityMode::ExtFrom.as_str()], vec!["fromAddress", "displayName", "mode", "serverName", "serverPort", "userName", "password"], true),
    ] })
}

/// The body of one mode: its own keys, plus `zuid` and `mode`. Which keys are required
/// comes from the mode's entry in the domain's table; the schemas of the keys, and any
/// constraint between them, are this function's.
fn mode_body(mode: Mode) -> Value {
    // A constraint between keys: (its keyword, its schema).
    let mut extra: Option<(&str, Value)> = None;
    let props: Value = match mode {
        Mode::AddSendMailDetails => {
            json!({ "sendMailDetails": { "oneOf": [ send_mail_detail(), { "type": "array", "minItems": 1, "maxItems": 50, "items": send_mail_detail() } ] } })
        }
        Mode::DeleteSendMailDetails => {
            // One of the two, not both (`null` is absence).
            let not_null = json!({ "not": { "type": "null" } });
            extra = Some((
                "oneOf",
                json!([
                    { "required": ["sendMailId"], "properties": { "sendMailId": not_null } },
                    { "required": ["fromAddress"], "properties": { "fromAddress": not_null } }
                ]),
            ));
            json!({ "sendMailId": nullable(lenient_id()), "fromAddress": nullable(email()) })
        }
        Mode::VerifySendMailDetails => json!({
            "sendMailId": lenient_id(),
            "confirmKey": { "type": ["string", "null"], "minLength": 1, "maxLength": 200, "description": "the key mailed to the identity's address; without it an admin (on the organization's URL) confirms an address of the organization's own domains, and an identity whose owner is confirmed has its relay checked again" },
        }),
        Mode::EmailUpdate => json!({ "emailAddress": email() }),
        Mode::EnableMailAccount | Mode::DisableMailAccount => json!({}),
        Mode::MailAccountOrderUpdate => json!({ "accList": { "oneOf": [
            { "type": "string", "pattern": comma_list(&id_digits()), "description": "account ids separated by commas" },
            { "type": "array", "minItems": 1, "uniqueItems": true, "items": lenient_id() }
        ] } }),
        Mode::UpdateOutgoingStatus => json!({ "outgoingBlocked": lenient_bool() }),
        Mode::UpdateIncomingStatus => json!({ "incomingBlocked": lenient_bool() }),
        Mode::UpdateImapStatus => json!({ "imapAccessEnabled": lenient_bool() }),
        Mode::UpdatePopStatus => json!({ "popAccessEnabled": lenient_bool() }),
        Mode::AddEmailAlias | Mode::DeleteEmailAlias => json!({ "emailAlias": email_list() }),
        Mode::AddMailForward
        | Mode::EnableMailForward
        | Mode::DeleteMailForward
        | Mode::ResendMailForwardVerficationMail => json!({ "mailForward": mail_forward(&[]) }),
        Mode::DisableMailForward => json!({
            "mailForward": mail_forward(&[("reason", text(200))]),
            "reason": nullable(text(200)),
        }),
        Mode::VerifyMailForward => {
            // A key for every element: the one beside `mailForward`, or each element's own
            // (`null` is absence).
            extra = Some((
                "anyOf",
                json!([
                    { "required": ["confirmKey"], "properties": { "confirmKey": { "type": "string" } } },
                    { "properties": { "mailForward": mail_forward_keyed(&[("confirmKey", text(200))]) } }
                ]),
            ));
            json!({
                "mailForward": mail_forward(&[("confirmKey", text(200))]),
                "confirmKey": { "type": ["string", "null"], "minLength": 1, "maxLength": 200, "description": "the key for every element that gives none of its own" },
            })
        }
        Mode::DeleteZohoMailCopy => {
            let mut flag = nullable(lenient_bool());
            flag["description"] =
                json!("keep no copy in the mailbox while a forward is in effect (default true)");
            json!({ "deleteCopy": flag })
        }
        Mode::ResetPassword => {
            // The two spellings of one key, not both (`null` is absence).
            let not_null = json!({ "not": { "type": "null" } });
            extra = Some((
                "not",
                json!({ "required": ["resetAuthToken", "resetAuthtoken"],
                        "properties": { "resetAuthToken": not_null, "resetAuthtoken": not_null } }),
            ));
            let flag = |default: bool, what: &str| {
                let mut f = nullable(lenient_bool());
                f["description"] = json!(format!("{what} (default {default})"));
                f
            };
            json!({
                "password": { "type": "string", "minLength": 8, "maxLength": 256, "writeOnly": true },
                "resetAuthToken": flag(true, "revoke the user's access tokens, refresh tokens and pending authorization codes"),
                "resetAuthtoken": flag(true, "the same as resetAuthToken (Zoho's samples spell it both ways); not with it"),
                "oneTimePassword": flag(false, "kept and shown in the account object; nothing forces a change yet"),
            })
        }
        Mode::UpdatePersonalInfo => {
            // At least one of the three (`null` is absence).
            let not_null = json!({ "not": { "type": "null" } });
            extra = Some((
                "anyOf",
                json!(["firstName", "lastName", "displayName"]
                    .iter()
                    .map(|k| json!({ "required": [k], "properties": { *k: not_null } }))
                    .collect::<Vec<_>>()),
            ));
            json!({ "firstName": nullable(text(100)), "lastName": nullable(text(100)), "displayName": nullable(text(100)) })
        }
        Mode::DisplayNameEmailUpdate => json!({
            "displayName": text(100),
            "emailAddress": { "description": "an address of the account (primary or alias): its `mailbox` identity gets the display name", "allOf": [email()] }
        }),
    };
    let mut properties = Map::new();
    properties.insert("zuid".into(), nullable(lenient_id()));
    properties.insert("mode".into(), json!({ "const": mode.as_str() }));
    if let Value::Object(p) = props {
        properties.extend(p);
    }
    let required: Vec<&str> = std::iter::once("mode")
        .chain(mode.spec().required.iter().copied())
        .collect();
    let mut body = json!({
        "title": mode.as_str(),
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    });
    if let Some((keyword, schema)) = extra {
        body[keyword] = schema;
    }
    body
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
        ("429", "the token sends requests faster than the operator allows (`Retry-After` says when to retry)"),
        ("503", "the database cannot be reached, or the request took longer than the server allows"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        r.insert(code.into(), error_response(what));
    }
    let retry_after = json!({ "Retry-After": { "description": "seconds to wait", "schema": { "type": "integer", "minimum": 1 } } });
    r["429"]["headers"] = retry_after.clone();
    if r["503"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("SERVER_BUSY"))
    {
        r["503"]["headers"] = retry_after;
    }
    Value::Object(r)
}

fn retry_after() -> Value {
    json!({ "Retry-After": { "description": "seconds to wait", "schema": { "type": "integer", "minimum": 1 } } })
}

fn path_param(name: &str, description: &str, schema: Value, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema, "example": example })
}

fn zoid_param() -> Value {
    path_param("zoid", "the organization id", id_string(), "12345678")
}

/// `mailForward`: an array of `{mailForwardTo, …}` objects, one such object, or a string
/// of addresses separated by commas. `extra` are the element keys besides
/// `mailForwardTo`.
fn mail_forward(extra: &[(&str, Value)]) -> Value {
    let element = forward_element(extra, false);
    json!({ "oneOf": [
        { "type": "array", "minItems": 1, "maxItems": MAX_FORWARDS_PER_ACCOUNT, "items": element },
        element,
        { "type": "string", "pattern": format!("^{e}(?:,{e}){{0,{}}}$", MAX_FORWARDS_PER_ACCOUNT - 1, e = email_regex()), "description": "addresses separated by commas" }
    ] })
}

/// `mailForward` whose every element gives the `extra` keys itself (no string form: a
/// string has no keys).
fn mail_forward_keyed(extra: &[(&str, Value)]) -> Value {
    let element = forward_element(extra, true);
    json!({ "oneOf": [
        { "type": "array", "minItems": 1, "maxItems": MAX_FORWARDS_PER_ACCOUNT, "items": element },
        element
    ] })
}

/// One `mailForward` object; with `required`, the `extra` keys must be there (not `null`).
fn forward_element(extra: &[(&str, Value)], required: bool) -> Value {
    let mut props = json!({ "mailForwardTo": email() });
    let mut names = vec!["mailForwardTo"];
    for (k, v) in extra {
        props[*k] = v.clone();
        names.extend(required.then_some(*k));
    }
    json!({ "type": "object", "additionalProperties": false, "required": names, "properties": props })
}

/// `start` and `limit` of a page.
fn page_params() -> Vec<Value> {
    vec![
        json!({ "name": "start", "in": "query", "description": "how many entries to skip", "schema": { "type": "integer", "minimum": 0, "maximum": u32::MAX } }),
        json!({ "name": "limit", "in": "query", "description": "entries per page (default 10)", "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }),
    ]
}

/// The samples of Zoho's pages, one per seed mode, for Rebecca's account of the demo
/// organization; on the admin URL with her `zuid` (the pages' enableMailAccount and
/// updateOutgoingStatus samples carry another user's). `deletesendmaildetails` (not in
/// Zoho's pages) removes the identity the `addsendmaildetails` sample adds.
fn update_examples(admin: bool) -> Value {
    let mut samples = json!({
        "addsendmaildetails": { "mode": "addsendmaildetails", "sendMailDetails": [ {
            "fromAddress": "rebecca@zylker.com", "displayName": "Rebecca", "mode": "extfrom",
            "serverPort": "465", "serverName": "mail.zoho.com", "userName": "rebecca@zylker.com",
            "password": "Smknel@88", "smtpConnection": "plain"
        } ] },
        "deletesendmaildetails": { "mode": "deletesendmaildetails", "fromAddress": "rebecca@zylker.com" },
        "emailupdate": { "mode": "emailupdate", "emailAddress": "rebecca@zylker.com" },
        "enableMailAccount": { "mode": "enableMailAccount" },
        "mailaccountorderupdate": { "mode": "mailaccountorderupdate", "accList": "5111110000000008001,5111110000000009001" },
        "updateOutgoingStatus": { "mode": "updateOutgoingStatus", "outgoingBlocked": "true" },
    });
    let Value::Object(map) = &mut samples else {
        unreachable!()
    };
    for (i, sample) in map.values_mut().enumerate() {
        if admin {
            // Both forms of the id, as the pages send them.
            sample["zuid"] = if i % 2 == 0 {
                json!(11111111)
            } else {
                json!("11111111")
            };
        }
    }
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), json!({ "value": v })))
            .collect(),
    )
}

/// The modes `keep` picks, as a phrase: "`a`, `b` and `c`".
fn modes_phrase(keep: impl Fn(&Mode) -> bool) -> String {
    let names: Vec<String> = Mode::ALL
        .iter()
        .filter(|m| keep(m))
        .map(|m| format!("`{}`", m.as_str()))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The modes that answer with the account's identities.
fn identity_modes() -> String {
    modes_phrase(|m| m.answers_with_identities())
}

/// What the id in the path of the admin URL's update names, per the table of modes.
fn update_path_id() -> String {
    format!(
        "an account id; for {}, the user's zuid instead (the mode changes that user's hosted account; an id that is no zuid of the organization is a 404 naming `zuid`)",
        modes_phrase(|m| m.spec().path == PathId::Zuid)
    )
}

fn update_body(admin: bool) -> Value {
    json!({
        "required": true,
        "content": { "application/json": {
            "schema": { "oneOf": Mode::ALL.iter().map(|m| mode_body(*m)).collect::<Vec<_>>() },
            "examples": update_examples(admin)
        } }
    })
}

/// How `/oauth/v2/auth` reads its `scope`.
const SCOPE_PARAM: &str = "Scopes of Zoho's form `Service.resource.OPERATION`, separated by commas or spaces; the operation (READ, CREATE, UPDATE, DELETE, ALL) in any case, `VirtualOffice.` read as `ZohoMail.`. Only `ZohoMail.accounts.*` and `ZohoMail.organization.accounts.*` give access; the others are accepted, recorded with the grant and give nothing. At least one served scope, at most 32 scopes of at most 100 characters, 2048 characters in all; otherwise the client gets `error=invalid_scope` with an `error_description`.";

pub fn document() -> Value {
    let account_ref = json!({ "$ref": "#/components/schemas/Account" });
    // A list that names someone: the other list may then be empty.
    let non_empty = json!({ "anyOf": [ { "type": "array", "minItems": 1 }, { "type": "string", "minLength": 1 } ] });
    let update_ok = ok_response(Some(json!({ "anyOf": [
        { "type": "array", "description": "the account's identities", "items": { "$ref": "#/components/schemas/SendMailDetail" } },
        { "type": "array", "description": "each address added, with its id", "items": { "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": { "type": "string" } } },
        { "type": "array", "description": "the account's forwards after a forwarding mode", "items": { "$ref": "#/components/schemas/MailForward" } }
    ] })));
    let mut update_ok_any = update_ok.clone();
    update_ok_any["content"]["application/json"]["schema"]["required"] = json!(["status"]);
    let auth = json!([{ "zohoOAuthToken": [] }]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mailplane",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("A self-hosted control plane for mail accounts, wire-compatible with the Zoho Mail Accounts API. The update endpoint's `mode` selects the operation; {} answer the account's identities in `data`, {} each address it added with its id, the other modes the status only.", identity_modes(), modes_phrase(|m| m.spec().answer == Answer::AddedAddresses)),
        },
        "paths": {
            "/api/accounts": {
                "get": { "operationId": "listOwnAccounts", "security": auth, "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": account_ref }))), &[]) }
            },
            "/api/accounts/{accountId}": {
                "parameters": [ path_param("accountId", "the account id", id_string(), "2560636000000008002") ],
                "get": { "operationId": "getOwnAccount", "security": auth, "responses": responses("200", ok_response(Some(account_ref.clone())), &[]) },
                "put": { "operationId": "updateOwnAccount", "security": auth, "requestBody": update_body(false), "responses": responses("200", update_ok_any.clone(), &[("409", "conflict with other data")]) }
            },
            "/api/organization": {
                "get": { "operationId": "getOwnOrganization", "security": auth, "responses": responses("200", ok_response(Some(json!({ "$ref": "#/components/schemas/Organization" }))), &[]) }
            },
            "/api/organization/{zoid}": {
                "parameters": [ zoid_param() ],
                "get": { "operationId": "getOrganization", "security": auth, "responses": responses("200", ok_response(Some(json!({ "$ref": "#/components/schemas/Organization" }))), &[]) }
            },
            "/api/organization/{zoid}/accounts": {
                "parameters": [ zoid_param() ],
                "get": {
                    "operationId": "listOrganizationAccounts",
                    "security": auth,
                    "parameters": page_params(),
                    "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": account_ref }))), &[])
                },
                "post": {
                    "operationId": "addUser",
                    "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/NewUser" },
                        "example": { "primaryEmailAddress": "paula@zylker.com", "password": "Paula-2468-pw", "firstName": "Paula", "lastName": "Smith", "displayName": "Paula", "role": "member" }
                    } } },
                    "responses": responses("201", json!({ "description": "created", "content": { "application/json": { "schema": { "type": "object", "required": ["status", "data"], "properties": { "status": { "$ref": "#/components/schemas/Status" }, "data": account_ref } } } } }), &[("409", "the address belongs to another account"), ("503", "the database cannot be reached, the request took longer than the server allows, or every password-hashing slot stayed taken (`SERVER_BUSY`, with `Retry-After`)")])
                },
                "put": {
                    "operationId": "changeRole",
                    "security": auth,
                    "description": "Zoho's Change the Role of a User: `mode` `changeRole` is the only mode of this URL (any other is a 400 `INVALID_MODE` naming it). Only a super admin may make or unmake admins (403 `NO_PERMISSION` otherwise, kept as a security event); the organization's last super admin keeps that role (400 `INVALID_VALUE` naming `userList`). A zuid that is no user of the organization is a 404. All or none; each named user gets an audit row.",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "title": "changeRole",
                        "type": "object", "additionalProperties": false,
                        "required": ["mode", "userList", "role"],
                        "properties": {
                            "mode": { "const": "changeRole" },
                            "userList": { "description": "the users' zuids", "oneOf": [
                                { "type": "array", "minItems": 1, "maxItems": 200, "items": lenient_id() },
                                { "type": "string", "pattern": comma_list(&id_digits()) }
                            ] },
                            "role": { "type": "string", "enum": ["admin", "member", "user"], "description": "`user` (Zoho's sample) is read as `member`" }
                        }
                    }, "example": { "mode": "changeRole", "userList": ["11111111"], "role": "admin" } } } },
                    "responses": responses("200", ok_response(Some(json!({ "type": "array", "description": "each user once, in the order given", "items": { "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": { "const": true } } }))), &[])
                },
                "delete": {
                    "operationId": "deleteUsers",
                    "security": auth,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false,
                        "description": "the users to delete, by zuid (`accountList`, Zoho's name) or by address; at least one",
                        "anyOf": [
                            { "required": ["accountList"], "properties": { "accountList": non_empty.clone() } },
                            { "required": ["emailList"], "properties": { "emailList": non_empty } }
                        ],
                        "properties": {
                            "accountList": nullable(json!({ "oneOf": [ { "type": "array", "items": lenient_id() }, { "type": "string", "pattern": comma_list_or_empty(&id_digits()) } ] })),
                            "emailList": nullable(json!({ "oneOf": [ { "type": "array", "items": email() }, { "type": "string", "pattern": comma_list_or_empty(&email_regex()) } ] }))
                        }
                    }, "example": { "emailList": ["paula@zylker.com"] } } } },
                    "responses": responses("200", ok_response(None), &[])
                }
            },
            "/api/organization/{zoid}/accounts/{account}": {
                "parameters": [ zoid_param() ],
                "get": {
                    "operationId": "getOrganizationUserAccount",
                    "security": auth,
                    "parameters": [ path_param("account", "a user's zuid or email address", json!({ "anyOf": [ id_string(), email() ] }), "11111111") ],
                    "responses": responses("200", ok_response(Some(account_ref.clone())), &[])
                },
                "put": {
                    "operationId": "updateOrganizationAccount",
                    "security": auth,
                    "parameters": [ path_param("account", &update_path_id(), id_string(), "2560636000000008002") ],
                    "requestBody": update_body(true),
                    "responses": responses("200", update_ok_any, &[("409", "conflict with other data"), ("503", "the database cannot be reached, the request took longer than the server allows, or (`resetPassword`) every password-hashing slot stayed taken (`SERVER_BUSY`, with `Retry-After`)")])
                }
            }
        },
        "components": {
            "securitySchemes": {
                "zohoOAuthToken": { "type": "apiKey", "in": "header", "name": "Authorization", "description": "`Zoho-oauthtoken <token>` or `Bearer <token>`" },
                "oauthClientBasic": { "type": "http", "scheme": "basic", "description": "the token endpoint's client authentication: `client_id:client_secret`, each form-urlencoded (RFC 6749 §2.3.1); the form's `client_id` and `client_secret` are the other way" }
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
                    "required": ["sendMailId", "fromAddress", "displayName", "mode", "ownerConfirmed", "validated", "validationRequired", "validationState", "status"],
                    "properties": {
                        "sendMailId": { "type": "string" },
                        "fromAddress": { "type": "string" },
                        "displayName": { "type": "string" },
                        "mode": strings(IdentityMode::ALL.iter().map(|m| m.as_str()).collect()),
                        "serverName": { "type": "string" },
                        "serverPort": { "type": "integer" },
                        "userName": { "type": "string" },
                        "smtpConnection": strings(SmtpConnection::ALL.iter().map(|m| m.as_str()).collect()),
                        "ownerConfirmed": { "type": "boolean", "description": "whether the owner of the address confirmed it (always true for the account's own addresses; mailplane's addition)" },
                        "validated": { "type": "boolean", "description": "true once the owner is confirmed and, for extfrom, the relay passed its last check" },
                        "validationRequired": { "type": "boolean" },
                        "validationState": { "type": "string", "enum": ["pending", "validated", "failed"] },
                        "validationError": { "type": "string", "maxLength": 300, "description": "why the relay's last check failed (extfrom)" },
                        "validatedTime": { "type": "integer", "description": "when the relay's last check ended, epoch ms (extfrom)" },
                        "confirmationMail": { "type": "string", "description": "in the answer of addsendmaildetails: `sent`, or `not sent: <why>`, for the key mailed to the address" },
                        "status": { "type": "boolean", "description": "false when the mail server does not honour the identity: its owner is not confirmed, its relay not verified, its address is another account's or lies in a domain another organization hosts, or another account confirmed it first" },
                        "statusReason": { "type": "string", "description": "why status is false (mailplane's addition)" }
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
                        "oneTimePassword": { "type": "boolean", "description": "the user's password was set as one-time, on creation or by `resetPassword` (a mailplane addition; nothing forces a change yet)" },
                        "userExpiry": { "type": "integer", "description": "when the user expires, epoch milliseconds; -1 for never (a mailplane addition)" },
                        "employeeId": { "type": "string" }, "department": { "type": "string" }, "designation": { "type": "string" },
                        "mobileNumber": { "type": "string" }, "extension": { "type": "string" },
                        "mailForward": { "type": "array", "items": { "$ref": "#/components/schemas/MailForward" } },
                        "deleteZohoMailCopy": { "type": "boolean", "description": "while a forward is in effect, the mailbox keeps no copy" },
                        "sequence": { "type": "integer" }, "accountCreationTime": { "type": "integer" }, "mailboxCreationTime": { "type": "integer" },
                        "lastLogin": { "type": "integer" }, "timeZone": { "type": "string" }, "language": { "type": "string" }, "country": { "type": "string" },
                        "URI": { "type": "string" }
                    }
                },
                "MailForward": {
                    "type": "object",
                    "required": ["mailForwardTo", "status", "type"],
                    "properties": {
                        "mailForwardTo": { "type": "string" },
                        "status": { "type": "string", "enum": ["UNCONFIRMED", "ENABLED", "DISABLED"], "description": "UNCONFIRMED until the key mailed to the target comes back through verifyMailForward" },
                        "type": { "type": "string", "enum": ["internal", "external"], "description": "whether the target is in the account's own domain" },
                        "disabledReason": { "type": "string", "description": "what disableMailForward said (a mailplane addition)" },
                        "confirmationMail": { "type": "string", "description": "in the answers of addMailForward and resendMailForwardVerficationMail: `sent`, or `not sent: …` with the reason (a mailplane addition)" }
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
                        "primaryEmailAddress": email(),
                        "password": { "type": "string", "minLength": 8, "maxLength": 256, "writeOnly": true },
                        "firstName": nullable(text(100)), "lastName": nullable(text(100)),
                        "displayName": nullable(text(100)),
                        "role": nullable(strings(Role::ALL.iter().map(|r| r.as_str()).collect())),
                        "country": nullable(text(10)), "language": nullable(text(10)), "timeZone": nullable(text(64)),
                        "userExpiry": nullable(json!({ "description": "days from now after which the user can no longer sign in or log in to mail", "oneOf": [
                            { "type": "integer", "minimum": 1, "maximum": MAX_USER_EXPIRY_DAYS },
                            { "type": "string", "pattern": format!("^(?:{})$", up_to(MAX_USER_EXPIRY_DAYS).join("|")) } ] })),
                        "oneTimePassword": nullable(lenient_bool()),
                        "groupMailList": nullable(json!({ "type": "array", "maxItems": 0, "description": "group addresses to add the user to; groups are not supported yet, so only an empty list is accepted" })),
                        "employeeId": nullable(profile_text(ProfileField::EmployeeId)),
                        "department": nullable(profile_text(ProfileField::Department)),
                        "designation": nullable(profile_text(ProfileField::Designation)),
                        "mobileNumber": nullable(profile_text(ProfileField::MobileNumber)),
                        "extension": nullable(profile_text(ProfileField::Extension))
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
            "mode": { "type": "string" }, "before": {}, "after": {},
            "via": { "type": ["string", "null"], "enum": ["api", "console", null], "description": "where the change was made: the API or the web console; null for the system's own rows (relay checks) and rows from before it was recorded" }
        }
    });
    let security_event = json!({
        "type": "object",
        "description": "requests refused on an admin URL of the organization: one, or count alike (same client, method, status, error code and user) between firstTime and time, with one sample (requestId, path)",
        "required": ["time", "firstTime", "count", "method", "path", "status", "errorCode"],
        "properties": {
            "time": { "type": "integer" }, "firstTime": { "type": "integer" }, "count": { "type": "integer", "minimum": 1 }, "requestId": { "type": ["string", "null"] }, "clientAddress": { "type": ["string", "null"] },
            "method": { "type": "string" }, "path": { "type": "string" }, "status": { "type": "integer" }, "errorCode": { "type": "string" },
            "actor": { "type": "object", "description": "the user behind the refused token (null without a valid token)", "properties": { "zuid": { "type": ["integer", "null"] } } }
        }
    });
    paths["/api/organization/{zoid}/auditlog"] = json!({
        "parameters": [ zoid_param() ],
        "get": {
            "operationId": "getAuditLog",
            "security": auth,
            "parameters": page_params().into_iter().chain([
                json!({ "name": "accountId", "in": "query", "description": "only the entries about this account (empty: all)", "schema": { "type": "string", "pattern": format!("^{}?$", id_digits()) } }),
                json!({ "name": "since", "in": "query", "description": "only the entries from this time on, in epoch milliseconds", "schema": { "type": "integer", "minimum": 0, "maximum": i64::MAX } }),
                json!({ "name": "type", "in": "query", "description": "`security`: the requests refused on the organization's admin URLs (401, 403, 404), recorded as security events, instead of the changes (any other value: the changes)", "schema": { "type": "string" }, "example": "security" })
            ]).collect::<Vec<_>>(),
            "responses": responses("200", ok_response(Some(json!({ "type": "array", "items": { "anyOf": [ entry, security_event ] } }))), &[])
        }
    });
    let status_ok = json!({ "description": "ok", "content": { "application/json": { "schema": { "type": "object", "properties": { "status": { "type": "string" } } } } } });
    // Adding a user hashes its password: the one API operation that takes an argon2 slot.
    paths["/api/organization/{zoid}/accounts"]["post"]["responses"]["503"]["headers"] =
        retry_after();
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
            "token_type": { "type": "string" }, "expires_in": { "type": "integer" },
            "scope": { "type": "string", "description": "the scopes the access token carries: the served ones of the grant (`ZohoMail.accounts.*`, `ZohoMail.organization.accounts.*`), comma-separated, in Zoho's spelling; scopes asked for that mailplane does not serve are not listed" },
            "error": { "type": "string" }
        }
    } } } });
    let auth_params: Vec<Value> = [
        "response_type",
        "client_id",
        "scope",
        "redirect_uri",
        "access_type",
        "state",
        "code_challenge",
        "code_challenge_method",
    ]
    .iter()
    .map(|n| {
        let mut p = json!({ "name": n, "in": "query", "schema": { "type": "string" } });
        if *n == "scope" {
            p["description"] = json!(SCOPE_PARAM);
        }
        p
    })
    .collect();
    paths["/oauth/v2/auth"] = json!({
        "get": {
            "operationId": "oauthAuthorize",
            "parameters": auth_params,
            "responses": { "200": { "description": "the sign-in page", "content": html }, "302": { "description": "back to the client with an error" }, "400": { "description": "unknown client or redirect URI", "content": html } }
        },
        "post": {
            "operationId": "oauthSignIn",
            "requestBody": form(json!({ "email": { "type": "string" }, "password": { "type": "string" }, "client_id": { "type": "string" }, "scope": { "type": "string", "description": SCOPE_PARAM }, "redirect_uri": { "type": "string" }, "response_type": { "type": "string" }, "state": { "type": "string" }, "code_challenge": { "type": "string" }, "code_challenge_method": { "type": "string", "enum": ["plain", "S256"] } })),
            "responses": { "200": { "description": "the consent page, or the sign-in page again", "content": html }, "302": { "description": "back to the client with an error" }, "400": { "description": "unknown client", "content": html }, "429": { "description": "too many failed sign-ins; `Retry-After` says when to come back", "content": html }, "503": { "description": "the sign-in page again: every password-checking slot stayed taken, nothing was checked; `Retry-After` says when to come back", "content": html } }
        }
    });
    paths["/oauth/v2/auth/consent"] = json!({ "post": {
        "operationId": "oauthConsent",
        "requestBody": form(json!({ "ticket": { "type": "string" }, "state": { "type": "string" }, "decision": { "type": "string", "enum": ["approve", "deny"] } })),
        "responses": { "302": { "description": "back to the client with the code or access_denied" }, "400": { "description": "expired or used", "content": html } }
    } });
    let oauth_error = |what: &str| json!({ "description": what, "content": { "application/json": { "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } });
    paths["/oauth/v2/token"] = json!({ "post": {
        "operationId": "oauthToken",
        "description": "The client authenticates with `client_id` and `client_secret` in the form, or with HTTP Basic. A `scope` parameter is not read: the grant's scopes decide.",
        "security": [ {}, { "oauthClientBasic": [] } ],
        "requestBody": form(json!({ "grant_type": { "type": "string" }, "client_id": { "type": "string" }, "client_secret": { "type": "string" }, "code": { "type": "string" }, "redirect_uri": { "type": "string" }, "refresh_token": { "type": "string" }, "code_verifier": { "type": "string" } })),
        "responses": {
            "200": token_answer,
            "400": oauth_error("`invalid_request`: HTTP Basic and form credentials that differ"),
            "401": oauth_error("`invalid_client` for a client that used HTTP Basic: a malformed header, an unknown client or a wrong secret; with `WWW-Authenticate: Basic`"),
            "503": { "description": "the database cannot be reached" }
        }
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

    /// docs/api.md describes every mode in its table of modes and in the compatibility
    /// table, so that a new mode cannot be left out of the documentation unnoticed.
    #[test]
    fn the_api_documentation_names_every_mode() {
        let doc = include_str!("../../../docs/api.md");
        let section = |from: &str, to: &str| {
            let start = doc
                .find(from)
                .unwrap_or_else(|| panic!("{from:?} in docs/api.md"));
            let rest = &doc[start..];
            &rest[..rest.find(to).unwrap_or(rest.len())]
        };
        let modes_table = section("Modes of the update endpoint", "Error codes");
        let compatibility = section("## Compatibility with Zoho", "\n## ");
        for mode in Mode::ALL {
            let cell = format!("`{}`", mode.as_str());
            assert!(
                modes_table.contains(&cell),
                "{cell} missing from the modes table"
            );
            assert!(
                compatibility.contains(&format!("| {cell} |")),
                "{cell} missing from the compatibility table"
            );
        }
    }

    /// Each mode's body schema describes exactly the keys of its entry in the domain's
    /// table (besides `zuid` and `mode`), and requires the ones the table requires.
    #[test]
    fn every_body_schema_has_the_keys_of_the_mode_table() {
        for mode in Mode::ALL {
            let spec = mode.spec();
            let body = mode_body(*mode);
            let mut described: Vec<&str> = body["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "zuid" | "mode"))
                .collect();
            let mut listed: Vec<&str> = spec.keys().collect();
            described.sort_unstable();
            listed.sort_unstable();
            assert_eq!(described, listed, "keys of {}", mode.as_str());
            let required: Vec<&str> = body["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .filter(|k| *k != "mode")
                .collect();
            assert_eq!(
                required,
                spec.required,
                "required keys of {}",
                mode.as_str()
            );
        }
    }
}
