"""Seeds the fuzzing server of scripts/fuzz-api and writes schemathesis's configuration.

Usage: seed.py MAILPLANE_BINARY DATA_DIR BASE_URL OUT_DIR

On top of the demo organization (Zylker, zoid 12345678) it makes a second organization with
the `bootstrap` command, adds users to both through the API (with passwords, so the OAuth
sign-in form has someone to sign in), registers an OAuth client and grants a refresh token.
It then writes OUT_DIR/tokens.env (the tokens the runs use, as shell assignments) and
OUT_DIR/schemathesis.toml: the dictionaries of real ids, addresses and OAuth values that
the generated requests draw from part of the time, so that they reach past the 404 of a
made-up id into the rules of each operation.

Only the standard library: it runs with the venv's interpreter or any Python 3.
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request

BINARY, DATA_DIR, BASE, OUT = sys.argv[1:5]

ZYLKER = 12345678
REBECCA_ZUID = 11111111
REBECCA_ACCOUNTS = ["2560636000000008002", "5111110000000008001", "5111110000000009001"]
PASSWORD = "Fuzz-pass-2468"
REDIRECT_URI = "http://127.0.0.1:9/oauth-callback"  # never contacted: redirects are not followed


def cli(*args):
    out = subprocess.run(
        [BINARY, *args, "--data-dir", DATA_DIR], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def api(method, path, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Zoho-oauthtoken " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def create_user(zoid, token, address, role="member", first="Fuzz", last="User"):
    body = {
        "primaryEmailAddress": address,
        "password": PASSWORD,
        "firstName": first,
        "lastName": last,
        "role": role,
    }
    status, answer = api("POST", f"/api/organization/{zoid}/accounts", token, body)
    if status != 201:
        sys.exit(f"seed: creating {address} answered {status}: {answer}")
    return answer["data"]


with open(f"{DATA_DIR}/demo-tokens.json") as f:
    demo = json.load(f)
admin, user = demo["adminToken"], demo["userToken"]

# The second organization, with its super admin.
initech = cli(
    "bootstrap",
    "--org-name", "Initech",
    "--domain", "initech.example",
    "--admin-email", "boss@initech.example",
    "--admin-password", PASSWORD,
)
initech_zoid, initech_admin = initech["zoid"], initech["accessToken"]

# Users in both organizations: an admin, members, and one that only deletions aim at.
users = [
    create_user(ZYLKER, admin, "carol@zylker.com", first="Carol"),
    create_user(ZYLKER, admin, "dave@zylker.com", role="admin", first="Dave"),
    create_user(ZYLKER, admin, "erin@zylker.com", first="Erin"),
    create_user(initech_zoid, initech_admin, "frank@initech.example", first="Frank"),
    create_user(initech_zoid, initech_admin, "grace@initech.example", first="Grace"),
]
erin = users[2]

accounts = set(REBECCA_ACCOUNTS)
zuids = {REBECCA_ZUID, initech["zuid"]}
addresses = {"becky@zylker.com", "admin@zylker.com", "boss@initech.example"}
for zoid, token in ((ZYLKER, admin), (initech_zoid, initech_admin)):
    status, answer = api("GET", f"/api/organization/{zoid}/accounts?limit=200", token)
    assert status == 200, answer
    for a in answer["data"]:
        accounts.add(a["accountId"])
        zuids.add(a["zuid"])
        addresses.add(a["primaryEmailAddress"])

client = cli("oauth", "client", "create", "--name", "Fuzz client", "--redirect-uri", REDIRECT_URI)
grant = cli(
    "oauth", "grant",
    "--client-id", client["clientId"],
    "--zuid", str(users[0]["zuid"]),
    "--scope", "ZohoMail.accounts.READ",
)

with open(f"{OUT}/tokens.env", "w") as f:
    f.write(f"ADMIN_TOKEN={admin}\nUSER_TOKEN={user}\nINITECH_ADMIN_TOKEN={initech_admin}\n")
    f.write(f"INITECH_ZOID={initech_zoid}\n")


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


# Addresses in the organizations' domains that no one has yet: new users, new primaries.
fresh = [f"fuzz{i}@zylker.com" for i in range(1, 6)] + [f"fuzz{i}@initech.example" for i in range(1, 3)]
dictionaries = {
    "zoids": [str(ZYLKER), str(initech_zoid)],
    "account_ids": sorted(accounts),
    "zuid_strings": sorted(str(z) for z in zuids),
    "zuids": sorted(zuids),
    "user_keys": sorted(str(z) for z in zuids) + sorted(addresses),
    "addresses": sorted(addresses),
    "new_addresses": fresh,
    "own_addresses": sorted(addresses) + fresh,
    "account_orders": [
        ",".join(REBECCA_ACCOUNTS[1:]),
        ",".join(reversed(REBECCA_ACCOUNTS)),
        REBECCA_ACCOUNTS[0],
    ],
    # Deletions aim at Erin and at users the run itself may have created, never at the
    # users the other operations need.
    "deletable_zuids": [str(erin["zuid"])],
    # Identities are numbered in sequence from 4000000000000000001: the seeded ones and
    # those the runs add.
    "send_mail_ids": [str(4000000000000000000 + i) for i in range(1, 81)],
    "deletable_addresses": [erin["primaryEmailAddress"]] + fresh,
    "client_ids": [client["clientId"]],
    "client_secrets": [client["clientSecret"]],
    "redirect_uris": [REDIRECT_URI],
    "response_types": ["code"],
    "scopes": ["ZohoMail.accounts.READ", "ZohoMail.accounts.READ,ZohoMail.accounts.UPDATE"],
    "sign_in_emails": ["carol@zylker.com", "frank@initech.example"],
    "passwords": [PASSWORD],
    "grant_types": ["authorization_code", "refresh_token"],
    "refresh_tokens": [grant["refreshToken"]],
    "decisions": ["approve", "deny"],
    "audit_types": ["security"],
}

# Where the dictionaries are drawn from, and how often (the rest is generated).
bindings = {
    "path.zoid": ("zoids", 0.8),
    "path.accountId": ("account_ids", 0.7),
    "query.accountId": ("account_ids", 0.5),
    "query.type": ("audit_types", 0.5),
    "body.zuid": ("zuids", 0.4),
    "body.emailAddress": ("own_addresses", 0.5),
    "body.primaryEmailAddress": ("new_addresses", 0.5),
    "body.accList": ("account_orders", 0.4),
    "body.sendMailId": ("send_mail_ids", 0.6),
    "body.fromAddress": ("addresses", 0.4),
    "body.sendMailDetails.fromAddress": ("own_addresses", 0.4),
    "body.sendMailDetails[*].fromAddress": ("own_addresses", 0.4),
    "body.accountList": ("deletable_zuids", 0.5),
    "body.emailList": ("deletable_addresses", 0.5),
    "query.client_id": ("client_ids", 0.7),
    "query.redirect_uri": ("redirect_uris", 0.5),
    "query.response_type": ("response_types", 0.7),
    "query.scope": ("scopes", 0.7),
    "body.client_id": ("client_ids", 0.7),
    "body.client_secret": ("client_secrets", 0.6),
    "body.redirect_uri": ("redirect_uris", 0.5),
    "body.response_type": ("response_types", 0.7),
    "body.scope": ("scopes", 0.7),
    "body.email": ("sign_in_emails", 0.6),
    "body.password": ("passwords", 0.5),
    "body.grant_type": ("grant_types", 0.7),
    "body.refresh_token": ("refresh_tokens", 0.5),
    "body.decision": ("decisions", 0.5),
}
# `account` is a user (zuid or address) for GET and an account id for PUT.
operation_bindings = {
    "getOrganizationUserAccount": {"path.account": ("user_keys", 0.7)},
    "updateOrganizationAccount": {"path.account": ("account_ids", 0.7)},
}

with open(f"{OUT}/dictionaries.toml", "w") as f:
    for name, values in dictionaries.items():
        f.write(f"[dictionaries.{name}]\nvalues = {toml_list(values)}\n\n")
    f.write("[parameters]\n")
    for key, (name, p) in bindings.items():
        f.write(f'"{key}" = {{ dictionary = "{name}", probability = {p} }}\n')
    for op, keys in operation_bindings.items():
        f.write(f'\n[[operations]]\ninclude-operation-id = "{op}"\n[operations.parameters]\n')
        for key, (name, p) in keys.items():
            f.write(f'"{key}" = {{ dictionary = "{name}", probability = {p} }}\n')

print(
    f"seeded: organizations {ZYLKER} and {initech_zoid}, {len(zuids)} users, "
    f"{len(accounts)} accounts, OAuth client {client['clientId']}"
)
