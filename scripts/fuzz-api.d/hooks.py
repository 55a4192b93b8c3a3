"""schemathesis checks for mailplane's contract (shared/spec/accounts-api.md), loaded by
scripts/fuzz-api through SCHEMATHESIS_HOOKS.

Two of schemathesis's own checks want a request without credentials answered 401 or 403
(`ignored_auth`, and `missing_required_header` for `Authorization`). The contract wants what
Zoho answers: 400 `INVALID_TICKET` without the header, 401 `INVALID_OAUTHTOKEN` for a token
it does not know (§3). fuzz-api turns those two off and runs `zoho_auth_contract` instead,
which holds every answer to those exact codes.

`positive_data_acceptance` cannot tell a 400 for a value's form (the document is looser than
the server) from a 400 for a rule that no schema can say (an address outside the
organization's domains). fuzz-api lets it accept 400, and `schema_valid_request_is_well_formed`
fails a request the document calls valid that the server refuses for its form. It checks
the path, query and body that were sent against the document (FUZZ_OPENAPI) itself: the
values that schemathesis draws from its dictionaries and from earlier responses can make a
request the document refuses out of a generated valid one (a body with both `sendMailId`
and `fromAddress`; the address a GET took as `{account}` passed on to the PUT of the same
path, which takes an account id there).

`envelope_status_is_http_status` holds `status.code` to the HTTP status (contract §1).

FUZZ_VALID_TOKENS (comma-separated) names the tokens that are real: an Authorization
header with any other value must be refused.
"""

import json
import os
import urllib.parse

import jsonschema_rs
import schemathesis

# Private helpers of the pinned schemathesis version (scripts/fuzz-api pins it).
from schemathesis.specs.openapi._auth_retry import get_security_parameters, remove_auth, send_probe

VALID_TOKENS = {t for t in os.environ.get("FUZZ_VALID_TOKENS", "").split(",") if t}
INVALID_HEADER = "Zoho-oauthtoken mpat_fuzz-not-a-real-token"

# Refusals of a request's form: a schema-valid request must never get one.
FORM_ERRORS = {
    "PATTERN_NOT_MATCHED",
    "LESS_THAN_MIN_OCCURANCE",
    "JSON_PARSE_ERROR",
    "INVALID_MODE",
    "EXTRA_KEY_FOUND_IN_JSON",
    "URL_RULE_NOT_CONFIGURED",
}
# Answers given before the token is read: the route, the method and the ids in the path.
BEFORE_AUTH = {"URL_RULE_NOT_CONFIGURED", "METHOD_NOT_ALLOWED"}

_probed: set[str] = set()

with open(os.environ["FUZZ_OPENAPI"]) as _f:
    DOCUMENT = json.load(_f)
_validators: dict = {}


def _escape(token):
    return token.replace("~", "~0").replace("/", "~1")


def _body_is_valid(case):
    """Whether the body sent is one the document's request schema accepts."""
    media = case.media_type or "application/json"
    key = (case.operation.path, case.method.lower(), media)
    if key not in _validators:
        pointer = "/".join(
            ["", "paths", _escape(key[0]), key[1], "requestBody", "content", _escape(media), "schema"]
        )
        schema = dict(DOCUMENT)
        schema["$ref"] = "#" + urllib.parse.quote(pointer, safe="/~")
        _validators[key] = jsonschema_rs.validator_for(schema)
    return _validators[key].is_valid(case.body)


def _parameters_are_valid(case):
    """Whether the path and query values sent are ones the document's parameters accept."""
    item = DOCUMENT["paths"].get(case.operation.path, {})
    defined = {}
    for p in item.get("parameters", []) + item.get(case.method.lower(), {}).get("parameters", []):
        defined[(p["in"], p["name"])] = p["schema"]
    sent = [("path", k, v) for k, v in (case.path_parameters or {}).items()]
    sent += [("query", k, v) for k, v in (case.query or {}).items()]
    for where, name, value in sent:
        schema = defined.get((where, name))
        if schema is None:
            continue
        key = (where, name, json.dumps(schema, sort_keys=True))
        if key not in _validators:
            _validators[key] = jsonschema_rs.validator_for(schema)
        values = value if isinstance(value, list) else [value]
        if not all(_validators[key].is_valid(v) for v in values):
            return False
    return True


def _envelope(response):
    """(status.code, data.errorCode) of a JSON envelope, or None."""
    if "json" not in (response.headers.get("content-type") or [""])[0]:
        return None
    try:
        body = response.json()
    except Exception:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
        return None
    data = body.get("data")
    code = data.get("errorCode") if isinstance(data, dict) else None
    return body["status"].get("code"), code


def _token_of(header):
    parts = (header or "").split(None, 1)
    return parts[1].strip() if len(parts) == 2 else None


def _expect(response, status, code, why):
    env = _envelope(response)
    got = env[1] if env else None
    if response.status_code != status or got != code:
        raise AssertionError(
            f"{why}: expected {status} {code} (contract §3), got {response.status_code} {got or response.content[:200]!r}"
        )


@schemathesis.check
def zoho_auth_contract(ctx, response, case):
    if not get_security_parameters(case.operation):
        return None
    # The OAuth endpoints authenticate clients (HTTP Basic or the form), not API callers:
    # the contract's answers to the Zoho-oauthtoken header are not theirs.
    if case.operation.path.startswith("/oauth/"):
        return None
    env = _envelope(response)
    if env and env[1] in BEFORE_AUTH:
        return None
    header = response.request.headers.get("Authorization")
    if header is None:
        _expect(response, 400, "INVALID_TICKET", "no Authorization header")
        return None
    if _token_of(header) not in VALID_TOKENS:
        _expect(response, 401, "INVALID_OAUTHTOKEN", f"unknown token in Authorization: {header[:40]!r}")
        return None
    # A real token and an answer past authentication: once per operation, the same request
    # without the header and with a token that does not exist.
    if 200 <= response.status_code < 300 and case.operation.label not in _probed:
        _probed.add(case.operation.label)
        security = get_security_parameters(case.operation)
        bare = remove_auth(case, security)
        _expect(send_probe(ctx, case, bare), 400, "INVALID_TICKET", "the same request without Authorization")
        wrong = remove_auth(case, security)
        wrong.headers = {**(wrong.headers or {}), "Authorization": INVALID_HEADER}
        _expect(send_probe(ctx, case, wrong), 401, "INVALID_OAUTHTOKEN", "the same request with an unknown token")
    return None


@schemathesis.check
def schema_valid_request_is_well_formed(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if not _parameters_are_valid(case):
        return None  # not the valid request the generator meant to send
    if isinstance(case.body, (dict, list)):
        if not _body_is_valid(case):
            return None  # the same
    env = _envelope(response)
    if env and env[1] in FORM_ERRORS:
        raise AssertionError(
            f"the document calls this request valid, the server refuses its form: {response.status_code} {env[1]}: "
            f"{response.json()['data'].get('moreInfo')}"
        )
    return None


@schemathesis.check
def envelope_status_is_http_status(ctx, response, case):
    env = _envelope(response)
    if env and isinstance(env[0], int) and env[0] != response.status_code:
        raise AssertionError(f"status.code {env[0]} in a {response.status_code} response (contract §1)")
    return None
