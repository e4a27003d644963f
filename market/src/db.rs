//! The database: one sqlx pool over SQLite or PostgreSQL, migrations at
//! start-up, and the [`Dialect`] trait that holds what differs between them.
//!
//! Queries are written once in the SQL both engines accept (`$n` parameters,
//! `RETURNING`, `ON CONFLICT`, BIGINT everywhere, `CAST(SUM(..) AS BIGINT)`)
//! and run through sqlx's `Any` driver; each dialect adds what only it can
//! do: SQLite serialises writers in-process (one file, one writer, WAL
//! readers); PostgreSQL lets writers run concurrently (claims stay exclusive
//! through conditional updates, see [`crate::claims`]) and wakes the other
//! `tally serve` processes with `LISTEN/NOTIFY`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{MarketError, Result};

/// What differs between the two engines.
pub trait Dialect: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Statements run on every new connection.
    fn connection_setup(&self) -> &'static [&'static str];
    /// Whether writers must take the in-process write lock.
    fn serialize_writes(&self) -> bool;
    /// The statement that opens a write transaction.
    fn begin_write(&self) -> &'static str;
    /// The embedded migrations of this dialect.
    fn migrator(&self) -> sqlx::migrate::Migrator;
    /// The statement that tells other market processes that work arrived.
    fn wake_statement(&self) -> Option<&'static str>;
}

pub struct Sqlite;
pub struct Postgres;

impl Dialect for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn connection_setup(&self) -> &'static [&'static str] {
        &[
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 10000",
            "PRAGMA foreign_keys = ON",
        ]
    }
    fn serialize_writes(&self) -> bool {
        true
    }
    /// Take the write lock up front: a deferred transaction that reads and
    /// then writes would fail at once, not wait, if another connection is
    /// still finishing (for example rolling back a dropped transaction).
    fn begin_write(&self) -> &'static str {
        "BEGIN IMMEDIATE"
    }
    fn migrator(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/sqlite")
    }
    fn wake_statement(&self) -> Option<&'static str> {
        None
    }
}

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn connection_setup(&self) -> &'static [&'static str] {
        &["SET TIME ZONE 'UTC'"]
    }
    fn serialize_writes(&self) -> bool {
        false
    }
    fn begin_write(&self) -> &'static str {
        "BEGIN"
    }
    fn migrator(&self) -> sqlx::migrate::Migrator {
        sqlx::migrate!("../migrations/postgres")
    }
    fn wake_statement(&self) -> Option<&'static str> {
        Some("NOTIFY tally_work")
    }
}

/// The market's database handle.
pub struct Db {
    pool: AnyPool,
    dialect: Box<dyn Dialect>,
    write_lock: Mutex<()>,
    url: String,
}

/// A write transaction; on SQLite it also holds the in-process write lock.
pub struct WriteTx<'a> {
    pub tx: Transaction<'static, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Db {
    /// Connect to `sqlite://path` (created if missing) or `postgres://...`,
    /// and run the migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let (dialect, url, max): (Box<dyn Dialect>, String, u32) = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            (Box::new(Sqlite), url, 8)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Box::new(Postgres), url.to_string(), 16)
        } else {
            return Err(MarketError::bad(
                "bad_database_url",
                format!("database URL must start with sqlite:// or postgres://, got {url:?}"),
            ));
        };
        let setup = dialect.connection_setup();
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    for stmt in setup {
                        conn.execute(*stmt).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        dialect.migrator().run(&pool).await?;
        Ok(Db {
            pool,
            dialect,
            write_lock: Mutex::new(()),
            url,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> &dyn Dialect {
        &*self.dialect
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begin a write transaction.
    pub async fn begin(&self) -> Result<WriteTx<'_>> {
        let guard = if self.dialect.serialize_writes() {
            Some(self.write_lock.lock().await)
        } else {
            None
        };
        let tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Read an i64 column.
pub fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

/// Read a text column.
pub fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
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
