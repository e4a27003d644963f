//! PostgreSQL through `sqlx`: the pool, its migrations, and running a query.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Executor as _;

use super::{Row, Value};
use crate::error::Result;

/// Connections per market process: four per core of this machine, at
/// least eight. More is slower, not faster: the extra sessions only queue
/// on the same hot rows (a bid's spend, the operator's fee balance) and
/// the server spends its time waking them. Measured on 2 cores with
/// `tally bench market --db postgres://`: 16 connections gave 225-260
/// tasks/s with one process and 178-202 with two, 8 gave 316-337 and
/// 263-291, 4 starved the long polls (127-193).
fn pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    (4 * cores).clamp(8, 64)
}

/// A pool on `url` (every session in UTC), migrated.
pub(super) async fn connect(url: &str) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(pool_size())
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
