//! `mailplane bench --console`: how fast the web console's users table answers in an
//! organization of `--accounts` users (10,000 by default), against the API's own listing
//! of the same organization's accounts measured in the same run.
//!
//! One organization is seeded; a console session of its super admin is opened in-process
//! (as a sign-in would open it, without the password's hashing), and its cookie is sent
//! with every console request. Each step offers `--console-rate` requests per second for
//! the warmup then the measured duration, on fresh connections, one step after the other
//! on the same servers:
//!
//! 1. the baseline: `GET /api/organization/{zoid}/accounts?start=<random>&limit=25` with
//!    the admin's token (the page size of the table);
//! 2. `GET /console/users?page=1`;
//! 3. `GET /console/users?page=<random>`, any page up to the last;
//! 4. `GET /console/users?q=…` with a search that finds one user (a random user's full
//!    address), one that finds many (`user<d>` for a random digit: a ninth of them), and
//!    one that finds none.
//!
//! Only 2xx answers count as answered (a redirect to the sign-in page is an error), and
//! before measuring each request is sent once and its page checked: the table with rows,
//! the one user found, the empty result.

use std::sync::Arc;
use std::time::Duration;

use mailplane_bench::connections::Connections;
use mailplane_bench::loadgen::{self, run_step, StepConfig, StepResult, Workload};
use mailplane_bench::report::Machine;
use mailplane_bench::workload::Gets;
use mailplane_store::{SessionLimits, Store, SyntheticOrg};
use rand::Rng;
use serde_json::json;

use super::{bases, short_ms, stop_all, watching, Fleet};
use crate::cli::BenchArgs;

/// The rows of a page: the console's and the baseline's.
const PAGE_ROWS: u64 = 25;
/// The session outlives any run.
const SESSION_MS: i64 = 24 * 60 * 60 * 1000;
/// The over-HTTP name of the console's cookie (see `mailplane_api`'s console session).
const COOKIE: &str = "mailplane_console";

/// The seeded organization and the credentials to read it.
pub(super) struct Org {
    zoid: String,
    domain: String,
    /// Seeded users (the super admin not counted).
    users: u32,
    admin_token: String,
    session: String,
}

/// Facts of the run for the report.
pub(super) struct Run<'a> {
    pub backend: &'a str,
    pub database: String,
    pub nodes: usize,
    pub seed_secs: f64,
    pub work: &'a std::path::Path,
}

/// Opens a console session of the organization's super admin.
pub(super) async fn prepare(store: &Store, org: &SyntheticOrg) -> Result<Org, String> {
    let admin = store
        .authenticate(&org.admin_token)
        .await
        .map_err(|e| format!("reading the admin's token: {e}"))?
        .ok_or("the seeded admin token is unknown")?;
    if !admin.role().is_admin() {
        return Err(format!(
            "the seeded organization's first user is {}, not an admin",
            admin.role().as_str()
        ));
    }
    let session = store
        .open_console_session(
            admin.zuid(),
            SessionLimits {
                absolute_ms: SESSION_MS,
                idle_ms: SESSION_MS,
            },
        )
        .await
        .map_err(|e| format!("opening a console session: {e}"))?;
    Ok(Org {
        zoid: org.zoid.to_string(),
        domain: org.domain.clone(),
        users: org.accounts.len() as u32,
        admin_token: org.admin_token.clone(),
        session,
    })
}

/// What a step's page must show, checked once before it is measured.
enum Expect {
    /// The API's JSON listing.
    Json,
    /// The table with at least one row.
    Rows,
    /// The table with this text (the one user found).
    Holding(String),
    /// The page saying nothing matches.
    NoMatch,
}

struct Kind {
    key: &'static str,
    name: String,
    /// The request's shape, for the report.
    request: String,
    workload: Arc<dyn Workload>,
    /// What a request of this kind must show (the first page's is checked already).
    check: Option<Expect>,
}

struct Measured {
    key: &'static str,
    name: String,
    request: String,
    result: StepResult,
}

pub(super) async fn run(
    args: &BenchArgs,
    fleet: &Fleet<'_>,
    step: &StepConfig,
    org: &Org,
    run: &Run<'_>,
) -> Result<(), String> {
    // Every step is measured to its end: the figures are the point, not a bound. A step
    // with more errors than its share still stops early (the run is broken).
    let step = StepConfig {
        max_p99: step.request_timeout,
        ..step.clone()
    };
    let servers = fleet.start().await?;
    let bases = bases(&servers);
    let result = measure(args, &bases, &watching(&step, &servers), org).await;
    stop_all(servers, "console").await;
    let (pages, steps) = result?;
    report(args, &step, org, run, pages, &steps)
}

async fn measure(
    args: &BenchArgs,
    bases: &[String],
    step: &StepConfig,
    org: &Org,
) -> Result<(u64, Vec<Measured>), String> {
    let cookie = format!("{COOKIE}={}", org.session);
    let console = [("cookie", cookie.as_str())];
    let bearer = format!("Zoho-oauthtoken {}", org.admin_token);
    let api = [("authorization", bearer.as_str())];
    let client = loadgen::client();

    // The table's own count of pages, from its first page.
    let first = Gets::new(bases.to_vec(), &console, |_| "/console/users?page=1".into())?;
    let body = check(&client, first.request(0), &Expect::Rows).await?;
    let pages = pages_of(&body)
        .ok_or("the users table's first page does not say how many pages there are")?;
    eprintln!(
        "the users table: {} users and the admin, {pages} pages of {PAGE_ROWS}",
        org.users
    );

    let users = u64::from(org.users.max(1));
    let zoid = org.zoid.clone();
    let domain = org.domain.clone();
    let address = move |k: u64| format!("user{k}%40{domain}");
    let kinds = vec![
        Kind {
            key: "api_accounts",
            name: "API listing (baseline)".into(),
            request: format!(
                "GET /api/organization/{zoid}/accounts?start=<0..{}>&limit={PAGE_ROWS}",
                users.saturating_sub(PAGE_ROWS)
            ),
            workload: Arc::new(Gets::new(bases.to_vec(), &api, move |_| {
                let start = rand::thread_rng().gen_range(0..=users.saturating_sub(PAGE_ROWS));
                format!("/api/organization/{zoid}/accounts?start={start}&limit={PAGE_ROWS}")
            })?),
            check: Some(Expect::Json),
        },
        Kind {
            key: "console_first_page",
            name: "console: first page".into(),
            request: "GET /console/users?page=1".into(),
            workload: Arc::new(first),
            check: None,
        },
        Kind {
            key: "console_random_page",
            name: "console: random page".into(),
            request: format!("GET /console/users?page=<1..={pages}>"),
            workload: Arc::new(Gets::new(bases.to_vec(), &console, move |_| {
                let page = rand::thread_rng().gen_range(1..=pages);
                format!("/console/users?page={page}")
            })?),
            check: Some(Expect::Rows),
        },
        Kind {
            key: "console_search_one",
            name: "console: search finding 1 user".into(),
            request: format!("GET /console/users?q=user<1..={users}>@{}", org.domain),
            workload: Arc::new(Gets::new(bases.to_vec(), &console, {
                let address = address.clone();
                move |_| {
                    let k = rand::thread_rng().gen_range(1..=users);
                    format!("/console/users?q={}", address(k))
                }
            })?),
            check: Some(Expect::Holding("1 matching".into())),
        },
        Kind {
            key: "console_search_many",
            name: "console: search finding many".into(),
            request: "GET /console/users?q=user<1..=9>".into(),
            workload: Arc::new(Gets::new(bases.to_vec(), &console, |_| {
                let d = rand::thread_rng().gen_range(1..=9);
                format!("/console/users?q=user{d}")
            })?),
            check: Some(Expect::Rows),
        },
        Kind {
            key: "console_search_none",
            name: "console: search finding none".into(),
            request: "GET /console/users?q=nobody<random>".into(),
            workload: Arc::new(Gets::new(bases.to_vec(), &console, |_| {
                let n: u32 = rand::thread_rng().gen();
                format!("/console/users?q=nobody{n}")
            })?),
            check: Some(Expect::NoMatch),
        },
    ];
    for k in &kinds {
        if let Some(expect) = &k.check {
            check(&client, k.workload.request(0), expect)
                .await
                .map_err(|e| format!("{}: {e}", k.name))?;
        }
    }

    let mut out = Vec::new();
    for k in kinds {
        eprintln!("{} at {:.0}/s …", k.name, args.console_rate);
        let conns = Connections::new(step.connections, step.request_timeout);
        let result = run_step(&conns, &k.workload, args.console_rate, step).await;
        drop(conns);
        eprintln!("  {}", super::step_line(&result));
        out.push(Measured {
            key: k.key,
            name: k.name,
            request: k.request,
            result,
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok((pages, out))
}

/// Sends `req` once and checks that it answers 200 with the page `expect` says; its body.
async fn check(
    client: &loadgen::HttpClient,
    req: loadgen::HttpRequest,
    expect: &Expect,
) -> Result<String, String> {
    let uri = req.uri().to_string();
    let (status, body) = loadgen::fetch(client, req, Duration::from_secs(30)).await?;
    let body = String::from_utf8_lossy(&body).into_owned();
    let short = || body.chars().take(300).collect::<String>();
    if status.as_u16() != 200 {
        return Err(format!("{uri} answered {status}: {}", short()));
    }
    let table = body.contains("<h1>Users</h1>");
    let rows = body.contains("<td><a href=\"/console/users/");
    let ok = match expect {
        Expect::Json => body.trim_start().starts_with('{') && body.contains("\"data\""),
        Expect::Rows => table && rows,
        Expect::Holding(text) => table && rows && body.contains(text.as_str()),
        Expect::NoMatch => table && !rows && body.contains("No user matches"),
    };
    if ok {
        Ok(body)
    } else {
        Err(format!(
            "{uri} answered 200 but not the expected page: {}",
            short()
        ))
    }
}

/// `N` of the pager's "Page 1 of N".
fn pages_of(body: &str) -> Option<u64> {
    let rest = &body[body.find("Page 1 of ")? + "Page 1 of ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn ratio(v: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

fn report(
    args: &BenchArgs,
    step: &StepConfig,
    org: &Org,
    run: &Run<'_>,
    pages: u64,
    steps: &[Measured],
) -> Result<(), String> {
    let base = steps.first().map(|s| &s.result);
    let (base_p50, base_p99) = (base.and_then(|b| b.p50_ms), base.and_then(|b| b.p99_ms));
    let x = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}×"));
    println!();
    println!(
        "mailplane bench --console: the users table of one organization of {} users (and its admin), {} pages of {PAGE_ROWS}; {} on {} node{}, {:.0} requests/s per step, {:.1} s measured after {:.1} s",
        org.users,
        pages,
        run.backend,
        run.nodes,
        if run.nodes == 1 { "" } else { "s" },
        args.console_rate,
        step.measure.as_secs_f64(),
        step.warmup.as_secs_f64()
    );
    println!(
        "| step | request | achieved/s | p50 ms | p90 ms | p99 ms | max ms | errors | p50 ÷ baseline | p99 ÷ baseline |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json_steps = Vec::new();
    for s in steps {
        let r = &s.result;
        let (p50x, p99x) = (ratio(r.p50_ms, base_p50), ratio(r.p99_ms, base_p99));
        println!(
            "| {} | `{}` | {:.0} | {} | {} | {} | {} | {}{} | {} | {} |",
            s.name,
            s.request,
            r.achieved_rate,
            short_ms(r.p50_ms),
            short_ms(r.p90_ms),
            short_ms(r.p99_ms),
            short_ms(r.max_ms),
            r.errors,
            if r.aborted { " (stopped early)" } else { "" },
            x(p50x),
            x(p99x)
        );
        json_steps.push(json!({
            "key": s.key,
            "name": s.name,
            "request": s.request,
            "result": r,
            "p50VsBaseline": p50x,
            "p99VsBaseline": p99x,
        }));
    }
    for s in steps {
        if let Some(e) = s.result.error_samples.first() {
            println!("{}: e.g. {e}", s.name);
        }
    }
    let report = json!({
        "scenario": "console",
        "mailplaneVersion": env!("CARGO_PKG_VERSION"),
        "backend": run.backend,
        "database": run.database,
        "nodes": run.nodes,
        "organizations": 1,
        "users": org.users,
        "pages": pages,
        "pageRows": PAGE_ROWS,
        "seedSecs": run.seed_secs,
        "machine": Machine::this(run.work.display().to_string()),
        "plan": {
            "ratePerSecond": args.console_rate,
            "warmupSecs": step.warmup.as_secs_f64(),
            "measureSecs": step.measure.as_secs_f64(),
            "maxInFlight": step.max_in_flight,
            "connectionsPerServer": step.connections,
            "requestTimeoutMs": step.request_timeout.as_millis() as u64,
        },
        "baseline": steps.first().map(|s| s.key),
        "steps": json_steps,
    });
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&args.json, json + "\n").map_err(|e| format!("{}: {e}", args.json.display()))?;
    println!("\nreport written to {}", args.json.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_count_is_read_from_the_pager() {
        assert_eq!(pages_of("<span>Page 1 of 401</span>"), Some(401));
        assert_eq!(pages_of("<p>No users</p>"), None);
        assert_eq!(ratio(Some(3.0), Some(1.5)), Some(2.0));
        assert_eq!(ratio(Some(3.0), None), None);
    }
}
