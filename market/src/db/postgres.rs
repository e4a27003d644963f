//! PostgreSQL through `sqlx`: the pool, its migrations, and running a query.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Executor as _;

use super::{Row, Value};
use crate::error::Result;

/// A pool on `url` (every session in UTC), migrated.
pub(super) async fn connect(url: &str) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET TIME ZONE 'UTC'").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    sqlx::migrate!("../migrations/postgres").run(&pool).await?;
    Ok(pool)
}

pub(super) async fn run(
    conn: &mut PgConnection,
    sql: &str,
    args: Vec<Value>,
    want_rows: bool,
) -> Result<(Vec<Row>, u64)> {
    let mut q = sqlx::query::<sqlx::Postgres>(sql);
    for v in args {
        q = match v {
            Value::Int(x) => q.bind(x),
            Value::Real(x) => q.bind(x),
            Value::Text(x) => q.bind(x),
            Value::Blob(x) => q.bind(x),
        };
    }
    if want_rows {
        let rows = q.fetch_all(&mut *conn).await?;
        let n = rows.len() as u64;
        Ok((rows.into_iter().map(Row::Postgres).collect(), n))
    } else {
        Ok((vec![], q.execute(&mut *conn).await?.rows_affected()))
    }
}
