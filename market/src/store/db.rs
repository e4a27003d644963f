//! The database: SQLite (embedded, the default) or PostgreSQL (several
//! market processes on one database), behind one small query API.
//!
//! Queries are written once in the SQL both engines accept (`$n` parameters,
//! `RETURNING`, `ON CONFLICT`, BIGINT everywhere, `CAST(SUM(..) AS BIGINT)`)
//! and run through [`query`]. What differs:
//!
//! - **SQLite** runs in-process through `rusqlite`: one writer connection
//!   behind an async lock (one file, one writer) and a pool of WAL readers,
//!   every statement prepared once and cached. Statements take microseconds,
//!   so they run inline rather than on a worker thread. Writes are
//!   *group-committed*: each [`WriteTx`] is a savepoint inside a transaction
//!   that the flusher commits once the writers queued behind it have run, and
//!   [`WriteTx::commit`] returns only after that commit. A busy market then
//!   writes each page of the log once per batch rather than once per request,
//!   and nothing is acknowledged before it is durable. WAL checkpoints, the
//!   one slow step, run in the background on their own connection.
//! - **PostgreSQL** runs through `sqlx`: writers run concurrently (claims stay
//!   exclusive through conditional updates, see `claims.rs`) and the
//!   other `tally serve` processes are woken with `LISTEN/NOTIFY`.
//!
//! Here: the handle, write transactions and where a query runs. The query
//! API is in `query`, each engine in `sqlite` and `postgres`.

mod postgres;
mod query;
mod retry;
mod sqlite;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{MutexGuard, Notify};

use crate::error::{MarketError, Result};
pub use query::{placeholders, query, statements, Decode, Query, Row, Value};
pub use retry::ATTEMPTS;
#[doc(hidden)]
pub use sqlite::Lite;
use sqlite::Writer;

/// The market's database handle.
pub struct Db {
    backend: Backend,
    url: String,
    /// Transactions run again after the database aborted them ([`Db::retrying`]).
    retries: std::sync::atomic::AtomicU64,
}

enum Backend {
    Sqlite(Arc<Lite>),
    Postgres(PgPool),
}

/// A write transaction. On SQLite it is a savepoint on the one writer
/// connection, held until it commits or is dropped (which undoes it).
pub struct WriteTx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite {
        /// Taken by `commit` and `rollback`.
        writer: Option<MutexGuard<'a, Writer>>,
        flush: &'a Notify,
    },
    /// Taken by `commit` and `rollback`.
    Postgres(Option<sqlx::Transaction<'static, sqlx::Postgres>>),
}

/// The PostgreSQL advisory lock key settlement takes exclusively and
/// decisions share ([`WriteTx::serialize_decisions`]).
pub(crate) const DECISIONS_LOCK: i64 = 7461;

impl WriteTx<'_> {
    /// Make this transaction's writes durable. On SQLite this waits for the
    /// batch it joined to be committed.
    pub async fn commit(mut self) -> Result<()> {
        match &mut self.inner {
            TxInner::Sqlite { writer, flush } => {
                let w = writer.take().expect("a transaction commits once");
                sqlite::commit(w, flush).await
            }
            TxInner::Postgres(tx) => {
                tx.take()
                    .expect("a transaction commits once")
                    .commit()
                    .await?;
                Ok(())
            }
        }
    }

    /// Whether this runs on PostgreSQL, where concurrent writers must lock
    /// rows (on SQLite the one writer excludes everyone else).
    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, TxInner::Postgres(_))
    }

    /// On PostgreSQL, keep every decision (in any market process) out until
    /// this transaction ends: settlement takes it, so that no decision pays
    /// or undoes earnings it is settling. Decisions take the shared side
    /// ([`crate::task::lock_task`]) and never wait for each other. A no-op
    /// on SQLite, whose one writer already excludes everyone.
    pub async fn serialize_decisions(&mut self) -> Result<()> {
        if self.is_postgres() {
            query(format!("SELECT pg_advisory_xact_lock({DECISIONS_LOCK})"))
                .fetch_one(&mut *self)
                .await?;
        }
        Ok(())
    }

    /// Undo everything this transaction did (dropping it does the same).
    pub async fn rollback(mut self) -> Result<()> {
        match &mut self.inner {
            TxInner::Sqlite { writer, flush } => {
                if let Some(w) = writer.take() {
                    sqlite::undo(w, flush);
                }
            }
            TxInner::Postgres(tx) => {
                tx.take()
                    .expect("a transaction ends once")
                    .rollback()
                    .await?;
            }
        }
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if let TxInner::Sqlite { writer, flush } = &mut self.inner {
            if let Some(w) = writer.take() {
                sqlite::undo(w, flush);
            }
        }
    }
}

/// Where a query runs: inside a write transaction, or on the database
/// directly (a read, or a single statement in its own transaction).
pub trait Executor<'c>: Send {
    #[doc(hidden)]
    fn target(self) -> Target<'c>;
}

#[doc(hidden)]
pub enum Target<'c> {
    Sqlite(&'c rusqlite::Connection),
    SqliteRead(&'c Lite),
    Postgres(&'c mut PgConnection),
    PostgresPool(&'c PgPool),
}

impl<'c, 'a: 'c> Executor<'c> for &'c mut WriteTx<'a> {
    fn target(self) -> Target<'c> {
        match &mut self.inner {
            TxInner::Sqlite { writer, .. } => {
                Target::Sqlite(&writer.as_ref().expect("an open transaction").conn)
            }
            TxInner::Postgres(tx) => Target::Postgres(tx.as_mut().expect("an open transaction")),
        }
    }
}

impl<'c> Executor<'c> for &'c Db {
    fn target(self) -> Target<'c> {
        match &self.backend {
            Backend::Sqlite(l) => Target::SqliteRead(l),
            Backend::Postgres(p) => Target::PostgresPool(p),
        }
    }
}

impl Db {
    /// Connect to `sqlite://path` (created if missing) or `postgres://...`,
    /// and run the migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        let backend = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(MarketError::bad(
                    "bad_database_url",
                    "SQLite needs a file: sqlite://PATH",
                ));
            }
            Backend::Sqlite(Lite::connect(PathBuf::from(path))?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres(postgres::connect(url).await?)
        } else {
            return Err(MarketError::bad(
                "bad_database_url",
                format!("database URL must start with sqlite:// or postgres://, got {url:?}"),
            ));
        };
        Ok(Db {
            backend,
            retries: Default::default(),
            url: url.to_string(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begin a write transaction.
    pub async fn begin(&self) -> Result<WriteTx<'_>> {
        let inner = match &self.backend {
            Backend::Sqlite(l) => TxInner::Sqlite {
                writer: Some(l.begin().await?),
                flush: &l.flush,
            },
            Backend::Postgres(p) => TxInner::Postgres(Some(p.begin().await?)),
        };
        Ok(WriteTx { inner })
    }

    /// Fold the write-ahead log back into the database file (SQLite; a
    /// no-op on PostgreSQL). Runs on a blocking thread with its own
    /// connection and never blocks writers.
    pub async fn checkpoint(&self) -> Result<()> {
        let Backend::Sqlite(l) = &self.backend else {
            return Ok(());
        };
        let l = Arc::clone(l);
        tokio::task::spawn_blocking(move || l.checkpoint())
            .await
            .map_err(|e| MarketError::Io(std::io::Error::other(e)))?
    }

    pub async fn close(&self) {
        if let Backend::Postgres(p) = &self.backend {
            p.close().await;
        }
    }
}

/// Read an i64 column.
pub fn int(row: &Row, col: &str) -> Result<i64> {
    row.try_get(col)
}

/// Read a text column.
pub fn text(row: &Row, col: &str) -> Result<String> {
    row.try_get(col)
}

/// Parse a stored value that must parse (account ids, hashes, JSON).
pub fn parse<T: FromStr>(value: &str, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| MarketError::Corrupt(format!("{what} {value:?}")))
}

/// Parse a stored JSON column.
pub fn json<T: serde::de::DeserializeOwned>(value: &str, what: &str) -> Result<T> {
    serde_json::from_str(value).map_err(|e| MarketError::Corrupt(format!("{what}: {e}")))
}
