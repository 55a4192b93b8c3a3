//! [`Db`] on PostgreSQL: a [`pipeline::Tx`], in a transaction for writes and outside one
//! for reads. Statements are prepared once per connection and kept; those polled together
//! are pipelined.

use std::future::Future;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::pipeline;
use crate::db::{Db, Dialect, Param, Row, Tx};
use crate::StoreError;

fn bind<'p>(params: &'p [&dyn Param]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p.postgres()).collect()
}

impl Db for pipeline::Tx {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
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
        let c = self.client();
        let found = self
            .send(async {
                Ok(c.query(&c.prepare_cached(sql).await?, &bind(params))
                    .await?)
            })
            .await?;
        found.iter().map(|r| map(&Row::Postgres(r))).collect()
    }

    async fn exec(&self, sql: &'static str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        let c = self.client();
        self.send(async {
            Ok(c.execute(&c.prepare_cached(sql).await?, &bind(params))
                .await?)
        })
        .await
    }

    async fn lock(&self, sql: &'static str, params: &[&dyn Param]) -> Result<(), StoreError> {
        self.exec(sql, params).await.map(drop)
    }

    async fn next_id(&self, sequence: &str) -> Result<Option<i64>, StoreError> {
        let found = self
            .rows(
                "SELECT nextval($1::text::regclass) AS id",
                &[&sequence],
                |r| r.get("id"),
            )
            .await?;
        Ok(found.into_iter().next())
    }
}

impl Tx for pipeline::Tx {
    fn commit_with<T, E: From<StoreError>>(
        &self,
        last: impl Future<Output = Result<T, E>>,
    ) -> impl Future<Output = Result<T, E>> {
        pipeline::Tx::commit_with(self, last)
    }

    async fn prepare(&self, sql: &'static str) -> Result<(), StoreError> {
        self.client().prepare_cached(sql).await?;
        Ok(())
    }
}
