//! The query API both engines share: a statement with `$n` parameters, its
//! bound values, and the rows it returns, read by column name.

use std::borrow::Cow;
use std::sync::Arc;

use rusqlite::types::Value as LiteValue;
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::{postgres, sqlite, Executor, Target};
use crate::error::{MarketError, Result};

/// A bound parameter. Nulls keep their type: PostgreSQL checks it.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

macro_rules! value_from {
    ($($t:ty => $v:ident($e:expr)),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(x: $t) -> Value {
                #[allow(clippy::redundant_closure_call)]
                Value::$v(($e)(x))
            }
        })*
    };
}

value_from! {
    i64 => Int(Some),
    Option<i64> => Int(|x| x),
    f64 => Real(Some),
    Option<f64> => Real(|x| x),
    &str => Text(|x: &str| Some(x.to_string())),
    &String => Text(|x: &String| Some(x.clone())),
    String => Text(Some),
    Option<String> => Text(|x| x),
    Option<&str> => Text(|x: Option<&str>| x.map(str::to_string)),
    &[u8] => Blob(|x: &[u8]| Some(x.to_vec())),
    &Vec<u8> => Blob(|x: &Vec<u8>| Some(x.clone())),
    Vec<u8> => Blob(Some),
    Option<Vec<u8>> => Blob(|x| x),
}

/// A statement and its parameters; see [`query`].
pub struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Value>,
}

/// `$from, $from+1, ...`: one placeholder per item of a list.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement with `$1, $2, ...` parameters.
/// Statements this process has sent to its databases, whichever engine.
static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many statements this process has sent to its databases
/// (`tally_db_statements_total`; `tally bench market` divides it by tasks).
pub fn statements() -> u64 {
    STATEMENTS.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn query<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl<'q> Query<'q> {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Run it; the number of rows it changed.
    pub async fn execute<'c>(self, ex: impl Executor<'c>) -> Result<u64> {
        Ok(self.run(ex, false).await?.1)
    }

    pub async fn fetch_all<'c>(self, ex: impl Executor<'c>) -> Result<Vec<Row>> {
        Ok(self.run(ex, true).await?.0)
    }

    pub async fn fetch_optional<'c>(self, ex: impl Executor<'c>) -> Result<Option<Row>> {
        Ok(self.run(ex, true).await?.0.into_iter().next())
    }

    pub async fn fetch_one<'c>(self, ex: impl Executor<'c>) -> Result<Row> {
        self.fetch_optional(ex)
            .await?
            .ok_or_else(|| MarketError::Corrupt("a query that returns a row returned none".into()))
    }

    async fn run<'c>(self, ex: impl Executor<'c>, rows: bool) -> Result<(Vec<Row>, u64)> {
        STATEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match ex.target() {
            Target::Sqlite(conn) => sqlite::run(conn, &self.sql, &self.args, rows),
            Target::SqliteRead(lite) => {
                lite.read(|conn| sqlite::run(conn, &self.sql, &self.args, rows))
            }
            Target::Postgres(conn) => postgres::run(conn, &self.sql, self.args, rows).await,
            Target::PostgresPool(pool) => {
                let mut conn = pool.acquire().await?;
                postgres::run(&mut conn, &self.sql, self.args, rows).await
            }
        }
    }
}

/// A result row; columns are read by name.
pub enum Row {
    Sqlite {
        cols: Arc<[String]>,
        vals: Vec<LiteValue>,
    },
    Postgres(PgRow),
}

/// A column type a [`Row`] can be read as.
pub trait Decode: Sized {
    #[doc(hidden)]
    fn from_lite(v: &LiteValue) -> Option<Self>;
    #[doc(hidden)]
    fn from_pg(row: &PgRow, col: &str) -> std::result::Result<Self, sqlx::Error>;
}

macro_rules! decode {
    ($t:ty, $pat:pat => $e:expr) => {
        impl Decode for $t {
            fn from_lite(v: &LiteValue) -> Option<Self> {
                match v {
                    $pat => Some($e),
                    _ => None,
                }
            }
            fn from_pg(row: &PgRow, col: &str) -> std::result::Result<Self, sqlx::Error> {
                row.try_get(col)
            }
        }
        impl Decode for Option<$t> {
            fn from_lite(v: &LiteValue) -> Option<Self> {
                match v {
                    LiteValue::Null => Some(None),
                    $pat => Some(Some($e)),
                    _ => None,
                }
            }
            fn from_pg(row: &PgRow, col: &str) -> std::result::Result<Self, sqlx::Error> {
                row.try_get(col)
            }
        }
    };
}

decode!(i64, LiteValue::Integer(x) => *x);
decode!(f64, LiteValue::Real(x) => *x);
decode!(String, LiteValue::Text(x) => x.clone());
decode!(Vec<u8>, LiteValue::Blob(x) => x.clone());

impl Row {
    /// Read column `col` as `T`.
    pub fn try_get<T: Decode>(&self, col: &str) -> Result<T> {
        match self {
            Row::Sqlite { cols, vals } => {
                let i = cols
                    .iter()
                    .position(|c| c == col)
                    .ok_or_else(|| MarketError::Corrupt(format!("no column {col}")))?;
                T::from_lite(&vals[i]).ok_or_else(|| {
                    MarketError::Corrupt(format!(
                        "column {col} holds {:?}, not a {}",
                        vals[i].data_type(),
                        std::any::type_name::<T>()
                    ))
                })
            }
            Row::Postgres(r) => Ok(T::from_pg(r, col)?),
        }
    }
}
