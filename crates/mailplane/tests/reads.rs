//! The reads (contract §5–§7) and adding and removing users.

mod common;

use common::*;
use serde_json::{json, Value};

backend_tests!(
    user_reads_own_accounts_in_sequence,
    organization_reads,
    org_accounts_page_and_lookup_by_zuid_or_email,
    adding_a_user_creates_a_working_account,
    adding_a_user_takes_every_key_of_zohos_page,
    removing_users_is_all_or_nothing,
);

/// The field types of the account object (contract §6).
fn assert_account_shape(a: &Value) {
    assert!(a["accountId"].is_string(), "{a}");
    for k in [
        "zuid",
        "sequence",
        "accountCreationTime",
        "mailboxCreationTime",
        "lastLogin",
    ] {
        assert!(a[k].is_number(), "{k} in {a}");
    }
    for k in [
        "enabled",
        "incomingBlocked",
        "outgoingBlocked",
        "imapAccessEnabled",
        "popAccessEnabled",
        "activeSyncEnabled",
    ] {
        assert!(a[k].is_boolean(), "{k} in {a}");
    }
    for k in [
        "accountName",
        "accountDisplayName",
        "displayName",
        "firstName",
        "lastName",
        "role",
        "type",
        "primaryEmailAddress",
        "mailboxAddress",
        "incomingUserName",
        "mailboxStatus",
        "timeZone",
        "language",
        "country",
        "URI",
    ] {
        assert!(a[k].is_string(), "{k} in {a}");
    }
    for m in a["emailAddress"].as_array().unwrap() {
        assert!(
            m["mailId"].is_string()
                && m["isPrimary"].is_boolean()
                && m["isAlias"].is_boolean()
                && m["isConfirmed"].is_boolean()
        );
    }
    for i in a["sendMailDetails"].as_array().unwrap() {
        assert!(
            i["sendMailId"].is_string() && i.get("password").is_none(),
            "{i}"
        );
        if i["mode"] == "extfrom" {
            assert!(i["serverPort"].is_number());
        }
    }
}

async fn user_reads_own_accounts_in_sequence() {
    let app = TestApp::demo();
    let r = app.user().accounts().await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["status"],
        json!({"code": 200, "description": "success"})
    );
    let list = r.data().as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|a| a["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![REBECCA, POP, IMAP]);
    let types: Vec<&str> = list.iter().map(|a| a["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["ZOHO_ACCOUNT", "POP_ACCOUNT", "IMAP_ACCOUNT"]);
    list.iter().for_each(assert_account_shape);
    let one = app.user().account(REBECCA).await.unwrap();
    assert_eq!(one.status, 200);
    let a = one.data();
    assert_account_shape(a);
    assert_eq!(
        (
            a["zuid"].clone(),
            a["primaryEmailAddress"].clone(),
            a["role"].clone()
        ),
        (json!(11111111), json!("becky@zylker.com"), json!("member"))
    );
    assert_eq!(a["sendMailDetails"][0]["mode"], "mailbox");
    assert_eq!(a["sendMailDetails"][0]["displayName"], "Rebecca");
}

async fn organization_reads() {
    let app = TestApp::demo();
    let own = app.admin().own_organization().await.unwrap();
    let by_id = app.admin().organization(ZOID).await.unwrap();
    assert_eq!(own.body, by_id.body);
    let o = own.data();
    assert_eq!(o["zoid"], json!(12345678));
    assert_eq!(
        (
            o["orgName"].clone(),
            o["primaryDomainName"].clone(),
            o["domains"].clone()
        ),
        (json!("Zylker"), json!("zylker.com"), json!(["zylker.com"]))
    );
    assert_eq!(
        (
            o["usersCount"].clone(),
            o["mailboxCount"].clone(),
            o["superAdmin"].clone()
        ),
        (json!(2), json!(2), json!("admin@zylker.com"))
    );
    assert!(o["orgCreationTime"].is_number());
    // A member has no admin role: 403 even with the scope.
    let member = app.token(REBECCA_ZUID, "ZohoMail.organization.accounts.READ");
    assert_eq!(
        app.client(Some(&member))
            .own_organization()
            .await
            .unwrap()
            .status,
        403
    );
}

async fn org_accounts_page_and_lookup_by_zuid_or_email() {
    let app = TestApp::demo();
    for i in 0..5 {
        let r = app.admin().create_user(ZOID, &json!({"primaryEmailAddress": format!("p{i}@zylker.com"), "password": "password-1"})).await.unwrap();
        assert_eq!(r.status, 201);
    }
    let all = app.admin().org_accounts(ZOID, "").await.unwrap();
    let all = all.data().as_array().unwrap().clone();
    assert_eq!(
        all.len(),
        7,
        "one hosted account per user, default limit 10"
    );
    assert!(all.iter().all(|a| a["type"] == "ZOHO_ACCOUNT"));
    let page = app
        .admin()
        .org_accounts(ZOID, "start=2&limit=3")
        .await
        .unwrap();
    let page: Vec<Value> = page.data().as_array().unwrap().clone();
    assert_eq!(page, all[2..5].to_vec());
    for q in ["limit=0", "limit=201", "start=-1", "limit=x"] {
        let r = app.admin().org_accounts(ZOID, q).await.unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (400, "PATTERN_NOT_MATCHED"),
            "{q}"
        );
    }
    let by_zuid = app.admin().org_account(ZOID, REBECCA_ZUID).await.unwrap();
    let by_mail = app
        .admin()
        .org_account(ZOID, "BECKY@zylker.com")
        .await
        .unwrap();
    assert_eq!(by_zuid.status, 200);
    assert_eq!(by_zuid.body, by_mail.body);
    assert_eq!(by_zuid.data()["accountId"], REBECCA);
    assert_eq!(
        app.admin()
            .org_account(ZOID, "nobody@zylker.com")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        app.admin().org_account(ZOID, "99999").await.unwrap().status,
        404
    );
}

async fn adding_a_user_creates_a_working_account() {
    let app = TestApp::demo();
    let r = app
        .admin()
        .create_user(ZOID, &json!({"primaryEmailAddress": "Paula@Zylker.com", "password": "s3cret-enough", "firstName": "Paula",
                                    "lastName": "Smith", "role": "admin", "country": "de", "language": "de", "timeZone": "Europe/Berlin"}))
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(
        r.body["status"],
        json!({"code": 201, "description": "Created"})
    );
    let a = r.data().clone();
    assert_account_shape(&a);
    assert_eq!(
        (
            a["primaryEmailAddress"].clone(),
            a["displayName"].clone(),
            a["role"].clone(),
            a["sequence"].clone()
        ),
        (
            json!("paula@zylker.com"),
            json!("Paula Smith"),
            json!("admin"),
            json!(1)
        )
    );
    assert_eq!(
        a["sendMailDetails"].as_array().unwrap().len(),
        1,
        "a mailbox identity for the primary address"
    );
    // The new user can be managed at once.
    let token = app.token(&a["zuid"].to_string(), "ZohoMail.accounts.ALL");
    let r = app
        .client(Some(&token))
        .update_account(
            a["accountId"].as_str().unwrap(),
            &json!({"mode": "updateOutgoingStatus", "outgoingBlocked": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Refusals.
    let cases = [
        (
            json!({"primaryEmailAddress": "paula@zylker.com", "password": "another-one"}),
            409,
            "ALREADY_EXISTS",
        ),
        (
            json!({"primaryEmailAddress": "x@elsewhere.com", "password": "another-one"}),
            400,
            "INVALID_VALUE",
        ),
        (
            json!({"primaryEmailAddress": "y@zylker.com"}),
            400,
            "LESS_THAN_MIN_OCCURANCE",
        ),
        (
            json!({"primaryEmailAddress": "y@zylker.com", "password": "short"}),
            400,
            "PATTERN_NOT_MATCHED",
        ),
        (
            json!({"primaryEmailAddress": "y@zylker.com", "password": "long-enough", "role": "king"}),
            400,
            "PATTERN_NOT_MATCHED",
        ),
        (
            json!({"primaryEmailAddress": "y@zylker.com", "password": "long-enough", "shoeSize": 9}),
            404,
            "EXTRA_KEY_FOUND_IN_JSON",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.admin().create_user(ZOID, &body).await.unwrap();
        assert_eq!((r.status, r.error_code()), (status, code), "{body}");
    }
    // Only a super admin creates admins: Paula (admin) may add members, not admins.
    let paula = app.token(&a["zuid"].to_string(), "ZohoMail.organization.accounts.ALL");
    let c = app.client(Some(&paula));
    assert_eq!(
        c.create_user(
            ZOID,
            &json!({"primaryEmailAddress": "m@zylker.com", "password": "long-enough"})
        )
        .await
        .unwrap()
        .status,
        201
    );
    assert_eq!(c.create_user(ZOID, &json!({"primaryEmailAddress": "n@zylker.com", "password": "long-enough", "role": "admin"})).await.unwrap().status, 403);
    // CREATE scope is needed.
    let reader = app.token(
        &a["zuid"].to_string(),
        "ZohoMail.organization.accounts.READ",
    );
    let r = app
        .client(Some(&reader))
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "o@zylker.com", "password": "long-enough"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (401, "INVALID_OAUTHSCOPE"));
}

/// Every key of Zoho's Add User page, as its clients send them (string booleans, numbers
/// as strings), is taken, stored and shown in the reads; `userExpiry` as epoch
/// milliseconds, -1 for a user without one. Refused values name their field.
async fn adding_a_user_takes_every_key_of_zohos_page() {
    let app = TestApp::demo();
    let body = json!({
        "primaryEmailAddress": "newuser1@zylker.com", "password": "Abc@123-long",
        "firstName": "New", "lastName": "User", "displayName": "New User 1",
        "role": "member", "country": "in", "language": "En", "timeZone": "Asia/Kolkata",
        "userExpiry": "10", "oneTimePassword": "true", "groupMailList": [],
        "employeeId": "E-1024", "department": "Sales", "designation": "Lead",
        "mobileNumber": "+91 98450 12345", "extension": 42
    });
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r = app.admin().create_user(ZOID, &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let zuid = r.data()["zuid"].to_string();
    for a in [
        r.data().clone(),
        app.admin()
            .org_account(ZOID, &zuid)
            .await
            .unwrap()
            .data()
            .clone(),
    ] {
        assert_account_shape(&a);
        let shown: Vec<Value> = [
            "displayName",
            "oneTimePassword",
            "employeeId",
            "department",
            "designation",
            "mobileNumber",
            "extension",
            "timeZone",
        ]
        .iter()
        .map(|k| a[*k].clone())
        .collect();
        assert_eq!(
            shown,
            [
                json!("New User 1"),
                json!(true),
                json!("E-1024"),
                json!("Sales"),
                json!("Lead"),
                json!("+91 98450 12345"),
                json!("42"),
                json!("Asia/Kolkata")
            ]
        );
        let expiry = a["userExpiry"].as_i64().expect("userExpiry");
        let ten_days = 10 * 86_400_000;
        assert!(
            (before + ten_days..before + ten_days + 60_000).contains(&expiry),
            "{expiry}"
        );
    }
    // Without the keys: no expiry (-1), no one-time password, empty profile fields.
    let plain = app
        .admin()
        .org_account(ZOID, "becky@zylker.com")
        .await
        .unwrap();
    let a = plain.data();
    assert_eq!(
        (
            a["userExpiry"].clone(),
            a["oneTimePassword"].clone(),
            a["employeeId"].clone()
        ),
        (json!(-1), json!(false), json!(""))
    );

    let refused = [
        (
            json!({"groupMailList": ["sales@zylker.com"]}),
            400,
            "INVALID_VALUE",
            "groupMailList: groups are not supported yet",
        ),
        (
            json!({"groupMailList": "sales@zylker.com"}),
            400,
            "INVALID_VALUE",
            "groupMailList",
        ),
        (
            json!({"userExpiry": 0}),
            400,
            "PATTERN_NOT_MATCHED",
            "userExpiry must be a whole number from 1 to 36500",
        ),
        (
            json!({"userExpiry": "ten"}),
            400,
            "PATTERN_NOT_MATCHED",
            "userExpiry",
        ),
        (
            json!({"userExpiry": 36501}),
            400,
            "PATTERN_NOT_MATCHED",
            "userExpiry",
        ),
        (
            json!({"oneTimePassword": "yes"}),
            400,
            "PATTERN_NOT_MATCHED",
            "oneTimePassword must be true or false",
        ),
        (
            json!({"employeeId": "E;1"}),
            400,
            "PATTERN_NOT_MATCHED",
            "employeeId must be",
        ),
        (
            json!({"department": "x".repeat(101)}),
            400,
            "PATTERN_NOT_MATCHED",
            "department must be",
        ),
        (
            json!({"designation": "a\nb"}),
            400,
            "PATTERN_NOT_MATCHED",
            "designation must be",
        ),
        (
            json!({"mobileNumber": "call me"}),
            400,
            "PATTERN_NOT_MATCHED",
            "mobileNumber must be",
        ),
        (
            json!({"extension": "12a"}),
            400,
            "PATTERN_NOT_MATCHED",
            "extension must be",
        ),
        (
            json!({"extension": true}),
            400,
            "PATTERN_NOT_MATCHED",
            "extension must be a string",
        ),
    ];
    for (extra, status, code, says) in refused {
        let mut body =
            json!({"primaryEmailAddress": "refused@zylker.com", "password": "long-enough"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.admin().create_user(ZOID, &body).await.unwrap();
        assert_eq!(
            (r.status, r.error_code()),
            (status, code),
            "{body}: {}",
            r.body
        );
        assert!(r.more_info().contains(says), "{body}: {}", r.body);
    }
    assert_eq!(
        app.admin()
            .org_account(ZOID, "refused@zylker.com")
            .await
            .unwrap()
            .status,
        404,
        "nothing of a refused request was created"
    );
}

async fn removing_users_is_all_or_nothing() {
    let app = TestApp::demo();
    let mut zuids = Vec::new();
    for i in 0..3 {
        let r = app.admin().create_user(ZOID, &json!({"primaryEmailAddress": format!("d{i}@zylker.com"), "password": "password-1"})).await.unwrap();
        zuids.push(r.data()["zuid"].clone());
    }
    let before = app.snapshot();
    let r = app
        .admin()
        .delete_users(ZOID, &json!({"accountList": [zuids[0], 424242]}))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(
        app.snapshot(),
        before,
        "nothing removed when one is missing"
    );
    let r = app.admin().delete_users(ZOID, &json!({"accountList": [zuids[0], zuids[1].to_string()], "emailList": ["d2@zylker.com"]})).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        app.admin()
            .org_account(ZOID, "d0@zylker.com")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        app.admin()
            .org_account(ZOID, "d2@zylker.com")
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        app.admin().own_organization().await.unwrap().data()["usersCount"],
        2
    );
    // Removed users' addresses are free again.
    let r = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "d0@zylker.com", "password": "password-1"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201);
    // The last super admin stays.
    let r = app
        .admin()
        .delete_users(ZOID, &json!({"emailList": "admin@zylker.com"}))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.more_info().contains("super admin"));
    let r = app.admin().delete_users(ZOID, &json!({})).await.unwrap();
    assert_eq!((r.status, r.error_code()), (400, "LESS_THAN_MIN_OCCURANCE"));
    // Deleting a user takes their tokens with them.
    let removed = app
        .admin()
        .create_user(
            ZOID,
            &json!({"primaryEmailAddress": "gone@zylker.com", "password": "password-1"}),
        )
        .await
        .unwrap();
    let zuid = removed.data()["zuid"].to_string();
    let token = app.token(&zuid, "ZohoMail.accounts.ALL");
    assert_eq!(
        app.admin()
            .delete_users(ZOID, &json!({"accountList": zuid}))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        app.client(Some(&token)).accounts().await.unwrap().status,
        401
    );
    // Each removal is audited.
    assert_eq!(
        app.query("SELECT COUNT(*) FROM audit WHERE mode = 'deleteUser'")[0],
        "4"
    );
}
