//! What a backend gives the data logic: statements on one connection or in one
//! transaction, rows read by column name, and parameters both drivers can bind.
//!
//! The logic (`read`, `write`, `provision`, `oauth`, `audit`, `mail`) is written once,
//! as `async fn`s generic over [`Db`]. PostgreSQL's statements really wait on the
//! network, and several sent together are pipelined on the connection; SQLite's run on
//! the spot, so its futures are ready on their first poll and [`run_now`] drives them on
//! the thread that holds the connection.
//!
//! SQL is written once, in PostgreSQL's form (`$1` parameters), as `&'static str`. SQLite
//! reads the same text with `$N` turned into `?N` and a trailing `FOR UPDATE` dropped (its
//! write transaction holds the database's one write lock already). Where the dialects really
//! differ the logic asks [`Db::dialect`] and gives both texts side by side.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use crate::StoreError;

/// Which SQL a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value both drivers can bind as a statement parameter.
pub(crate) trait Param: Sync {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync> Param for T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        self
    }
}

/// A type both drivers can read a column as. PostgreSQL is strict: an `INTEGER` column
/// reads as `i32`, a `BIGINT` as `i64`, a `BOOLEAN` as `bool`; SQLite reads all three.
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>
{
}

impl<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>> Column for T {}

/// One row of a result, read by column name (never by position: a column added to a
/// query cannot shift the others).
pub(crate) enum Row<'r> {
    /// With the statement's column names, read once per statement: rusqlite's own lookup
    /// by name asks SQLite for every column's name at every read.
    Sqlite {
        row: &'r rusqlite::Row<'r>,
        columns: &'r [String],
    },
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    pub(crate) fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        match self {
            Row::Sqlite { row, columns } => {
                let at = columns
                    .iter()
                    .position(|c| c == column)
                    .ok_or_else(|| StoreError::Corrupt(format!("no column {column:?}")))?;
                Ok(row.get(at)?)
            }
            Row::Postgres(r) => Ok(r.try_get(column)?),
        }
    }
}

/// Statements on one connection (a read) or in one transaction (a write).
///
/// The futures of a PostgreSQL connection that are polled together go out together (one
/// round trip for all); `tokio::try_join!` over reads is how the logic asks for that.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;

    /// Every row of `sql`, each turned into a `T` by `map`.
    fn rows<T, F>(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
        map: F,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>>
    where
        F: FnMut(&Row<'_>) -> Result<T, StoreError>;

    /// Runs a statement; the number of rows it changed.
    fn exec(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
    ) -> impl Future<Output = Result<u64, StoreError>>;

    /// Takes the row locks of a `SELECT … FOR UPDATE`, where the backend has row locks
    /// (PostgreSQL). SQLite's write transaction already holds its database's only write
    /// lock: nothing to do there.
    fn lock(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// A new id from the backend's sequence `sequence`, or `None` where the insert's
    /// `NULL` key makes one (SQLite's `AUTOINCREMENT`).
    fn next_id(&self, sequence: &str) -> impl Future<Output = Result<Option<i64>, StoreError>>;

    /// The first row of `sql`, if any.
    async fn row<T, F>(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
        map: F,
    ) -> Result<Option<T>, StoreError>
    where
        F: FnMut(&Row<'_>) -> Result<T, StoreError>,
    {
        Ok(self.rows(sql, params, map).await?.into_iter().next())
    }

    /// The one row `sql` always answers (`COUNT(*)` and the like).
    async fn one<T, F>(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
        map: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(&Row<'_>) -> Result<T, StoreError>,
    {
        self.row(sql, params, map)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))
    }

    /// Whether `sql` answers any row.
    async fn exists(&self, sql: &'static str, params: &[&dyn Param]) -> Result<bool, StoreError> {
        Ok(self.row(sql, params, |_| Ok(())).await?.is_some())
    }
}

/// A write transaction, with the edges PostgreSQL can send along with statements (see
/// `postgres::pipeline`). On SQLite the writer commits each group of writes itself, so
/// the edges only run the statements they are given.
pub(crate) trait Tx: Db {
    /// Sends `last`, then `COMMIT`, together. `last` must send every statement on its first
    /// poll (prepare them first with [`Tx::prepare`]) and fail only by the server's answer.
    fn commit_with<T, E: From<StoreError>>(
        &self,
        last: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>>;

    /// Prepares `sql` on the connection ahead of a [`Tx::commit_with`].
    fn prepare(&self, sql: &'static str) -> impl Future<Output = Result<(), StoreError>>;
}

/// Drives a future whose every step is ready at once (the logic over SQLite) to its end,
/// on this thread. A step that is not ready would be a bug of ours (something
/// asynchronous reached from SQLite's logic); it is reported, never waited for.
pub(crate) fn run_now<T, E: From<StoreError>>(
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut work = pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Task("a SQLite step waited".into()).into()),
    }
}

/// Runs `works` together and answers their results in order, or the first error. On
/// PostgreSQL their statements go out together (one round trip for all, where awaiting
/// them one by one takes one each); on SQLite they simply run in order.
pub(crate) async fn try_join_all<T, F>(works: Vec<F>) -> Result<Vec<T>, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    let mut works: Vec<Pin<Box<F>>> = works.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = works.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (work, out) in works.iter_mut().zip(done.iter_mut()) {
            if out.is_some() {
                continue;
            }
            match work.as_mut().poll(cx) {
                Poll::Ready(Ok(value)) => *out = Some(value),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => waiting = true,
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(Ok(done.iter_mut().filter_map(Option::take).collect()))
        }
    })
    .await
}

/// Whether a failed statement broke a unique key (another transaction's row won).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Db(rusqlite::Error::SqliteFailure(f, _)) => {
            f.code == rusqlite::ErrorCode::ConstraintViolation
        }
        StoreError::Postgres(pe) => {
            pe.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        }
        _ => false,
    }
}
