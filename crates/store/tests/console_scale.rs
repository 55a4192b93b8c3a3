//! How long the console's listing of users takes in an organization of 10,000: a
//! measurement to run by hand, not a test of the behaviour (see `conformance.rs`):
//!
//! ```text
//! cargo test -p mailplane-store --test console_scale -- --ignored --nocapture
//! ```
//!
//! With `MAILPLANE_SCALE_SQLITE` (a file) or `MAILPLANE_SCALE_PG` (a URL of an empty
//! database) the data is left there, for `EXPLAIN`; otherwise each run seeds a fresh
//! database that is removed afterwards.

// Its `conformance!` is not used here.
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::Fresh;
use mailplane_domain::Access;
use mailplane_store::{DbOptions, GrantKind, Location, RelayKey, Store};

const USERS: u32 = 10_000;
const PAGE: u32 = 50;
const RUNS: usize = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run by hand"]
async fn users_page_at_scale_sqlite() {
    match std::env::var("MAILPLANE_SCALE_SQLITE") {
        Ok(path) => measure("sqlite", &open(Location::SqliteFile(path.into())).await).await,
        Err(_) => {
            let db = Fresh::sqlite().await;
            measure("sqlite", &db.store().await).await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run by hand"]
async fn users_page_at_scale_postgres() {
    match std::env::var("MAILPLANE_SCALE_PG") {
        Ok(url) => measure("postgres", &open(Location::Postgres(url)).await).await,
        Err(_) => {
            let db = Fresh::postgres().await;
            measure("postgres", &db.store().await).await
        }
    }
}

async fn open(location: Location) -> Store {
    Store::open(location, RelayKey::generate(), DbOptions::default())
        .await
        .expect("the store")
}

/// The median of `RUNS` timings of `work` (after one run that warms the caches).
async fn median<F, Fut>(mut work: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    work().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        work().await;
        times.push(t.elapsed());
    }
    times.sort();
    times[RUNS / 2]
}

async fn measure(backend: &str, s: &Store) {
    let t = Instant::now();
    let org = s.seed_synthetic(1, USERS).await.expect("seeded").remove(0);
    eprintln!("{backend}: seeded {USERS} users in {:?}", t.elapsed());
    let g = s
        .authenticate(&org.admin_token)
        .await
        .unwrap()
        .unwrap()
        .grant(GrantKind::Admin, Access::Read)
        .unwrap();
    let total = USERS + 1;
    let last_start = total - total % PAGE;
    let cases: [(&str, &str, u32, u32); 5] = [
        ("first page", "", 0, PAGE),
        ("last page", "", last_start, total % PAGE),
        ("search, one match", "user9999@", 0, 1),
        ("search, many matches", "user99", 0, PAGE),
        ("search, no match", "nobody-at-all", 0, 0),
    ];
    for (what, search, start, expect) in cases {
        let page = s
            .users_page(&g, org.zoid, search, start, PAGE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.accounts.len() as u32, expect, "{what}");
        let took = median(|| async {
            s.users_page(&g, org.zoid, search, start, PAGE)
                .await
                .unwrap();
        })
        .await;
        eprintln!(
            "{backend}: {what:<22} search={search:?} start={start}: total {} page {} in {took:?}",
            page.total,
            page.accounts.len()
        );
    }
}
