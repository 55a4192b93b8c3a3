//! Concurrent changes through the HTTP API, with the clients spread over one or more
//! nodes (`serve` processes on one database): none is lost, none is half-applied, and no
//! answer is a 5xx. Each scenario prints how many clients and rounds it ran.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use mailplane_client::{Client, Reply};
use serde_json::{json, Value};
use tokio::sync::Barrier;

use super::*;

/// A fourth account of Rebecca's (IMAP), so that reorders have 24 permutations.
pub const IMAP2: &str = "5111110000000010001";

/// The node client `i` talks to: clients go round the nodes.
fn node<'a>(nodes: &[&'a TestApp], i: usize) -> &'a TestApp {
    nodes[i % nodes.len()]
}

/// Whether client `i` uses the admin URL: each node gets both URL forms.
fn admin_url(nodes: &[&TestApp], i: usize) -> bool {
    (i / nodes.len()) % 2 == 1
}

/// A PUT of Rebecca's account through the admin URL or her own, as `i`'s turn says.
fn put_rebecca(
    nodes: &[&TestApp],
    i: usize,
    body: Value,
) -> impl Future<Output = Reply> + Send + 'static {
    let app = node(nodes, i);
    let admin = admin_url(nodes, i);
    let client = if admin { app.admin() } else { app.user() };
    async move {
        let r = if admin {
            client.update_org_account(ZOID, REBECCA, &body).await
        } else {
            client.update_account(REBECCA, &body).await
        };
        r.expect("request sent")
    }
}

/// Runs the requests at the same time (released together by a barrier) and returns the
/// answers in order. No answer may be a 5xx.
async fn all_at_once<F>(requests: Vec<F>, ctx: &str) -> Vec<Reply>
where
    F: Future<Output = Reply> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                request.await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("client task"));
    }
    for r in &replies {
        assert!(
            r.status < 500,
            "{ctx}: a server error: {} {}",
            r.status,
            r.body
        );
    }
    replies
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

/// Rebecca's account as `client` reads it.
async fn rebecca(client: &Client) -> Value {
    let r = client.account(REBECCA).await.expect("request sent");
    assert_eq!(r.status, 200, "{}", r.body);
    r.data().clone()
}

/// `clients` concurrent addsendmaildetails of distinct addresses on Rebecca's account:
/// every identity is there afterwards, seen alike by every node, with one audit row each.
pub async fn identity_additions_are_all_kept(nodes: &[&TestApp], clients: usize) {
    eprintln!(
        "identity additions: {clients} concurrent clients over {} node(s), one round",
        nodes.len()
    );
    let requests = (0..clients)
        .map(|i| {
            let detail = json!({"fromAddress": format!("c{i}@example.net"), "displayName": "C", "mode": "backupacc"});
            put_rebecca(nodes, i, json!({"mode": "addsendmaildetails", "sendMailDetails": [detail]}))
        })
        .collect();
    let replies = all_at_once(requests, "identity additions").await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        statuses(&replies)
    );
    let mut want: Vec<String> = (0..clients).map(|i| format!("c{i}@example.net")).collect();
    want.push("becky@zylker.com".into());
    want.sort();
    for app in nodes {
        assert_eq!(identity_addresses(&rebecca(&app.user()).await), want);
    }
    let audit = nodes[0].query("SELECT COUNT(*) FROM audit");
    assert_eq!(audit[0], clients.to_string());
}

/// `rounds` rounds of three concurrent changes of different fields of one account (the
/// enabled flag, outgoing mail, a new identity): all three land every time.
pub async fn changes_of_different_fields_all_land(nodes: &[&TestApp], rounds: usize) {
    eprintln!(
        "changes of different fields: 3 concurrent clients per round, {rounds} rounds, over {} node(s)",
        nodes.len()
    );
    for round in 0..rounds {
        let blocked = round % 2 == 0;
        let flag =
            json!({"mode": if blocked { "disableMailAccount" } else { "enableMailAccount" }});
        let outgoing = json!({"mode": "updateOutgoingStatus", "outgoingBlocked": blocked});
        let identity = json!({"mode": "addsendmaildetails", "sendMailDetails": {"fromAddress": format!("r{round}@example.net"), "displayName": "R", "mode": "backupacc"}});
        let requests = [flag, outgoing, identity]
            .into_iter()
            .enumerate()
            .map(|(i, body)| put_rebecca(nodes, round + i, body))
            .collect();
        let replies = all_at_once(requests, &format!("round {round}")).await;
        assert!(
            replies.iter().all(|r| r.status == 200),
            "round {round}: {:?}",
            statuses(&replies)
        );
        for app in nodes {
            let acc = rebecca(&app.user()).await;
            assert_eq!(acc["enabled"], !blocked, "round {round}");
            assert_eq!(acc["outgoingBlocked"], blocked, "round {round}");
            assert_eq!(identity_addresses(&acc).len(), round + 2, "round {round}");
        }
    }
}

/// Gives Rebecca a fourth account, [`IMAP2`] (the API has no call that adds external
/// accounts), so that eight concurrent reorders can all submit different permutations.
pub fn add_fourth_account(app: &TestApp) {
    app.execute(&format!(
        "INSERT INTO accounts (account_id, zuid, kind, sequence, external_address, created_ms) \
         VALUES ({IMAP2}, {REBECCA_ZUID}, 'IMAP_ACCOUNT', 4, 'rebecca2@imap.example.net', 0)"
    ));
}

/// Every order of `items`.
fn permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (i, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            all.push(tail);
        }
    }
    all
}

/// The account ids and sequences of the user's list, in order.
async fn order(client: &Client) -> (Vec<String>, Vec<u64>) {
    let r = client.accounts().await.expect("request sent");
    assert_eq!(r.status, 200, "{}", r.body);
    let accounts = r.data().as_array().expect("a list").clone();
    (
        accounts
            .iter()
            .map(|a| a["accountId"].as_str().expect("id").to_string())
            .collect(),
        accounts
            .iter()
            .map(|a| a["sequence"].as_u64().expect("sequence"))
            .collect(),
    )
}

/// `rounds` rounds of 2 to 8 concurrent mailaccountorderupdate of Rebecca's four
/// accounts, each client with a different permutation: the final order is one of the
/// submitted permutations, with sequences 1 to 4, and every node reads the same.
pub async fn reorders_end_in_one_submitted_permutation(nodes: &[&TestApp], rounds: usize) {
    add_fourth_account(nodes[0]);
    let perms = permutations(&[REBECCA, POP, IMAP, IMAP2]);
    eprintln!(
        "reorders: {rounds} rounds of 2 to 8 concurrent clients (cycling), distinct permutations of {} accounts, over {} node(s)",
        perms[0].len(),
        nodes.len()
    );
    let mut clients = 0;
    for round in 0..rounds {
        let n = 2 + round % 7;
        clients += n;
        // Steps of 7 through the 24 permutations never repeat one within a round.
        let submitted: Vec<Vec<String>> = (0..n)
            .map(|i| {
                perms[(round * 5 + i * 7) % perms.len()]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .collect();
        let requests = submitted
            .iter()
            .enumerate()
            .map(|(i, p)| {
                put_rebecca(
                    nodes,
                    round + i,
                    json!({"mode": "mailaccountorderupdate", "accList": p.join(",")}),
                )
            })
            .collect();
        let replies = all_at_once(requests, &format!("round {round}")).await;
        assert!(
            replies.iter().all(|r| r.status == 200),
            "round {round}: {:?}",
            statuses(&replies)
        );
        let (first, seqs) = order(&nodes[0].user()).await;
        assert_eq!(seqs, vec![1, 2, 3, 4], "round {round}");
        assert!(
            submitted.contains(&first),
            "round {round}: {first:?} is none of {submitted:?}"
        );
        for app in &nodes[1..] {
            assert_eq!(
                order(&app.user()).await,
                (first.clone(), seqs.clone()),
                "round {round}"
            );
        }
    }
    eprintln!("reorders: {clients} requests in all");
}

/// `rounds` rounds in which `claimants` new accounts all try to take the same new address
/// with emailupdate at once: exactly one 200, the others 409, the address has one owner,
/// and every account keeps exactly one primary address.
pub async fn claims_of_one_address_have_one_winner(
    nodes: &[&TestApp],
    claimants: usize,
    rounds: usize,
) {
    eprintln!(
        "address claims: {claimants} concurrent clients per round, {rounds} rounds, over {} node(s)",
        nodes.len()
    );
    let mut accounts = Vec::new();
    for i in 0..claimants {
        let body =
            json!({"primaryEmailAddress": format!("u{i}@zylker.com"), "password": "long enough"});
        let r = node(nodes, i)
            .admin()
            .create_user(ZOID, &body)
            .await
            .expect("request sent");
        assert_eq!(r.status, 201, "{}", r.body);
        accounts.push(
            r.data()["accountId"]
                .as_str()
                .expect("accountId")
                .to_string(),
        );
    }
    for round in 0..rounds {
        let target = format!("prize{round}@zylker.com");
        let requests = accounts
            .iter()
            .enumerate()
            .map(|(i, account)| {
                let (client, account) = (node(nodes, round + i).admin(), account.clone());
                let body = json!({"mode": "emailupdate", "emailAddress": target});
                async move {
                    client
                        .update_org_account(ZOID, &account, &body)
                        .await
                        .expect("request sent")
                }
            })
            .collect();
        let replies = all_at_once(requests, &format!("round {round}")).await;
        let statuses = statuses(&replies);
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 409),
            "round {round}: {statuses:?}"
        );
        let winner = &accounts[statuses.iter().position(|s| *s == 200).expect("a winner")];
        let owners = nodes[0].query(&format!(
            "SELECT account_id FROM addresses WHERE address = '{target}'"
        ));
        assert_eq!(owners, vec![winner.clone()], "round {round}");
        for app in nodes {
            let r = app
                .admin()
                .org_account(ZOID, &target)
                .await
                .expect("request sent");
            assert_eq!(r.data()["accountId"], json!(winner), "round {round}");
        }
    }
    let with_one_primary: BTreeSet<String> = nodes[0]
        .query("SELECT account_id FROM addresses WHERE is_primary GROUP BY account_id HAVING COUNT(*) = 1")
        .into_iter()
        .collect();
    assert_eq!(
        with_one_primary.len(),
        claimants + 2,
        "every hosted account still has exactly one primary"
    );
    let hosted = nodes[0].query("SELECT COUNT(*) FROM accounts WHERE kind = 'ZOHO_ACCOUNT'");
    assert_eq!(hosted[0], (claimants + 2).to_string());
}
