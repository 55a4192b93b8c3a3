//! [`Db`] on a SQLite connection: statements run on the spot, prepared once per
//! connection and kept.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::RwLock;

use rusqlite::Connection;

use crate::db::{Db, Dialect, Param, Row, Tx};
use crate::StoreError;

/// A read connection inside its read transaction, or the writer's transaction.
pub(crate) struct SqliteDb<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteDb<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        SqliteDb { conn }
    }

    fn statement(&self, sql: &'static str) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
        Ok(self.conn.prepare_cached(sqlite_text(sql))?)
    }
}

/// The SQLite text of each shared statement, made once: statements are `&'static str`,
/// so their number is that of the statements in the binary, and each request finds its
/// text here instead of rewriting it.
static TEXTS: RwLock<BTreeMap<(usize, usize), &'static str>> = RwLock::new(BTreeMap::new());

/// [`rewrite`], remembered.
fn sqlite_text(sql: &'static str) -> &'static str {
    let key = (sql.as_ptr() as usize, sql.len());
    if let Some(text) = TEXTS.read().ok().and_then(|t| t.get(&key).copied()) {
        return text;
    }
    let text: &'static str = match rewrite(sql) {
        Cow::Borrowed(same) => same,
        Cow::Owned(new) => Box::leak(new.into_boxed_str()),
    };
    if let Ok(mut texts) = TEXTS.write() {
        texts.entry(key).or_insert(text)
    } else {
        text
    }
}

/// The shared SQL as SQLite reads it: `$N` parameters become `?N` (SQLite would number
/// `$N` by first appearance, not by N), and a trailing `FOR UPDATE [OF …]` goes.
fn rewrite(sql: &str) -> Cow<'_, str> {
    let sql = match sql.rfind(" FOR UPDATE") {
        Some(at) => &sql[..at],
        None => sql,
    };
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn bind<'p>(params: &'p [&dyn Param]) -> impl rusqlite::Params + 'p {
    rusqlite::params_from_iter(params.iter().map(|p| p.sqlite()))
}

impl Db for SqliteDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn rows<T, F>(
        &self,
        sql: &'static str,
        params: &[&dyn Param],
        mut map: F,
    ) -> Result<Vec<T>, StoreError>
    where
        F: FnMut(&Row<'_>) -> Result<T, StoreError>,
    {
        let mut stmt = self.statement(sql)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let mut found = stmt.query(bind(params))?;
        let mut out = Vec::new();
        while let Some(row) = found.next()? {
            out.push(map(&Row::Sqlite {
                row,
                columns: &columns,
            })?);
        }
        Ok(out)
    }

    async fn exec(&self, sql: &'static str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        Ok(self.statement(sql)?.execute(bind(params))? as u64)
    }

    async fn lock(&self, _sql: &'static str, _params: &[&dyn Param]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn next_id(&self, _sequence: &str) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}

impl Tx for SqliteDb<'_> {
    fn commit_with<T, E: From<StoreError>>(
        &self,
        last: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>> {
        last
    }

    async fn prepare(&self, _sql: &'static str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{rewrite, sqlite_text};

    #[test]
    fn shared_sql_reads_as_sqlite() {
        assert_eq!(
            rewrite("UPDATE t SET a = $2 WHERE id = $1 AND b = $12"),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = ?12"
        );
        assert_eq!(
            rewrite("SELECT 1 FROM users WHERE zuid = $1 FOR UPDATE"),
            "SELECT 1 FROM users WHERE zuid = ?1"
        );
        assert_eq!(
            rewrite("SELECT COUNT(*) FROM orgs"),
            "SELECT COUNT(*) FROM orgs"
        );
        // Remembered: the same text, made once.
        let sql = "DELETE FROM t WHERE a = $2 AND b = $1";
        assert_eq!(sqlite_text(sql), "DELETE FROM t WHERE a = ?2 AND b = ?1");
        assert!(std::ptr::eq(sqlite_text(sql), sqlite_text(sql)));
    }
}
