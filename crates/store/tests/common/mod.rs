//! A fresh, empty database of either backend for each test, and [`conformance!`], which
//! turns one test body into a `sqlite::` and a `postgres::` test.
//!
//! PostgreSQL tests create a database with a random name on the server at
//! `MAILPLANE_TEST_PG_URL` (or [`DEFAULT_PG_URL`] when it is unset) and drop it with
//! `WITH (FORCE)` when the test ends, panic or not. Whether they run at all is decided
//! by `build.rs`: see there why they are `#[ignore]`d rather than passed when no server
//! answers.
#![allow(dead_code, unused_macros)]

use std::hash::{BuildHasher, Hasher};

use mailplane_store::{redact_url, DbOptions, Location, RelayKey, Store};
use tempfile::TempDir;

pub const PG_URL_VAR: &str = "MAILPLANE_TEST_PG_URL";
/// Where the tests look for PostgreSQL when the variable is unset (the same default as
/// `build.rs`, which decides whether these tests are ignored).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of a PostgreSQL server the tests may create and drop databases on.
pub fn pg_admin_url() -> String {
    std::env::var(PG_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An empty database of one backend, and the relay key the test's stores open it with.
/// Dropping it removes the database.
pub struct Fresh {
    pub backend: Backend,
    pub key: RelayKey,
    location: Location,
    _gone_on_drop: Cleanup,
}

enum Cleanup {
    Dir(TempDir),
    Pg(PgDrop),
}

impl Fresh {
    pub async fn sqlite() -> Fresh {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Fresh {
            backend: Backend::Sqlite,
            key: RelayKey::generate(),
            location: Location::SqliteFile(dir.path().join("mailplane.db")),
            _gone_on_drop: Cleanup::Dir(dir),
        }
    }

    /// A new database on the test server. When the server cannot be reached this fails
    /// the test: it only runs when the build found a server or under `CI=true`.
    pub async fn postgres() -> Fresh {
        let admin_url = pg_admin_url();
        let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach PostgreSQL at {}: {e}. This test is not ignored because \
                     CI=true, or because PostgreSQL answered when the tests were built \
                     (touch crates/store/build.rs to look again)",
                    redact_url(&admin_url)
                )
            });
        let driver = tokio::spawn(connection);
        let name = format!("mailplane_conf_{:016x}", random());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        drop(client);
        let _ = driver.await;
        Fresh {
            backend: Backend::Postgres,
            key: RelayKey::generate(),
            location: Location::Postgres(with_database(&admin_url, &name)),
            _gone_on_drop: Cleanup::Pg(PgDrop { admin_url, name }),
        }
    }

    /// Runs `sql` on the database itself, beside any store (fixtures the store's API
    /// cannot make yet).
    pub async fn execute(&self, sql: &str) {
        match &self.location {
            Location::SqliteFile(path) => {
                let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Location::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to the test database");
                let driver = tokio::spawn(connection);
                client
                    .batch_execute(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                drop(client);
                let _ = driver.await;
            }
        }
    }

    /// Marks every `extfrom` identity validated: owner confirmed, relay check passed.
    ///
    /// TEMP until verifysendmaildetails lands: the tests then confirm the owner and record
    /// the relay check through the store's API instead.
    pub async fn validate_identities(&self) {
        self.execute(
            "UPDATE identities SET owner_confirmed = TRUE, relay_state = 'validated' \
             WHERE mode = 'extfrom'",
        )
        .await;
    }

    /// The store on this database with the test's key.
    pub async fn store(&self) -> Store {
        self.open(self.key.clone()).await
    }

    /// The store on this database with another key (for key rotation).
    pub async fn open(&self, key: RelayKey) -> Store {
        Store::open(self.location.clone(), key, DbOptions::default())
            .await
            .unwrap_or_else(|e| panic!("open {:?}: {e}", self.location))
    }
}

fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// `url` naming the database `name` instead of its own, parameters kept.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let authority = &before_query[..before_query.find('/').unwrap_or(before_query.len())];
    format!("{scheme}://{authority}/{name}{query}")
}

/// Drops a test database. `Drop` cannot wait on the test's runtime, so the statement runs
/// on a runtime of its own in a thread of its own; `WITH (FORCE)` ends the connections a
/// store may still hold.
struct PgDrop {
    admin_url: String,
    name: String,
}

impl Drop for PgDrop {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {outcome:?}", self.name);
        }
    }
}

/// For each `async fn name(db: Fresh)` listed, a test `sqlite::name` and a test
/// `postgres::name` that run it on a fresh database of that backend. The PostgreSQL ones
/// are ignored (so counted as skipped, never as passed) when `build.rs` found no server.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Fresh::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[cfg_attr(
                    no_postgres,
                    ignore = "no PostgreSQL answered when this test was built (see crates/store/build.rs)"
                )]
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Fresh::postgres().await).await
                }
            )*
        }
    };
}
pub(crate) use conformance;
