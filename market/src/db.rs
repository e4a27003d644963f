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
//!   exclusive through conditional updates, see [`crate::claims`]) and the
//!   other `tally serve` processes are woken with `LISTEN/NOTIFY`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::Value as LiteValue;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor as _, Row as _};
use tokio::sync::{oneshot, Mutex, MutexGuard, Notify};

use crate::error::{MarketError, Result};

/// The embedded SQLite migrations, applied in order, each once.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "market",
        include_str!("../../migrations/sqlite/0001_market.sql"),
    ),
    (
        2,
        "settlement",
        include_str!("../../migrations/sqlite/0002_settlement.sql"),
    ),
    (
        3,
        "bid_tasks",
        include_str!("../../migrations/sqlite/0003_bid_tasks.sql"),
    ),
    (
        4,
        "lean_indexes",
        include_str!("../../migrations/sqlite/0004_lean_indexes.sql"),
    ),
];

/// Pragmas of every SQLite connection.
const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 10000;
    PRAGMA foreign_keys = ON;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -65536;";

/// The market's database handle.
pub struct Db {
    backend: Backend,
    url: String,
}

enum Backend {
    Sqlite(Arc<Lite>),
    Postgres(PgPool),
}

#[doc(hidden)]
pub struct Lite {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: std::sync::Mutex<Vec<rusqlite::Connection>>,
    checkpointer: std::sync::Mutex<Option<rusqlite::Connection>>,
    /// Wakes the flusher: a batch is waiting to be committed.
    flush: Arc<Notify>,
}

/// The writer connection and the batch it has open.
struct Writer {
    conn: rusqlite::Connection,
    /// Writers whose savepoints are released into the open transaction and
    /// who wait for its commit.
    pending: Vec<oneshot::Sender<std::result::Result<(), String>>>,
}

impl Writer {
    /// Commit the open batch and tell its writers how it went.
    fn flush(&mut self) {
        let outcome = if self.conn.is_autocommit() {
            // An engine error rolled the batch back (SQLite does that for
            // some errors, e.g. a full disk): its writers' work is gone.
            Err("the batch was rolled back by the database engine".to_string())
        } else {
            exec_cached(&self.conn, "COMMIT").map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK");
                e.to_string()
            })
        };
        if let Err(e) = &outcome {
            if !self.pending.is_empty() {
                tracing::error!(error = %e, writers = self.pending.len(), "group commit failed");
            }
        }
        for p in self.pending.drain(..) {
            let _ = p.send(outcome.clone());
        }
    }

    /// Undo the current writer's savepoint, keeping the batch.
    fn rollback_savepoint(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK TO op; RELEASE op") {
            tracing::error!(error = %e, "rollback failed");
        }
    }
}

impl Lite {
    fn open(path: &std::path::Path) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(SQLITE_SETUP)?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(conn)
    }

    /// Run `f` on a reader connection (opening one if all are busy).
    fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => Lite::open(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool");
        if pool.len() < 16 {
            pool.push(conn);
        }
        out
    }

    /// The flusher: commits a batch once the writers queued before it ran
    /// (the writer lock is fair, so it queues behind them).
    fn spawn_flusher(lite: &Arc<Lite>) {
        let weak = Arc::downgrade(lite);
        let flush = Arc::clone(&lite.flush);
        tokio::spawn(async move {
            loop {
                flush.notified().await;
                let Some(lite) = weak.upgrade() else { return };
                lite.writer.lock().await.flush();
            }
        });
    }

    fn checkpoint(&self) -> Result<()> {
        let mut conn = self.checkpointer.lock().expect("checkpointer");
        if conn.is_none() {
            *conn = Some(Lite::open(&self.path)?);
        }
        let conn = conn.as_ref().expect("opened");
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl Drop for Lite {
    fn drop(&mut self) {
        // Let the flusher see that the database is gone.
        self.flush.notify_one();
    }
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

impl WriteTx<'_> {
    /// Make this transaction's writes durable. On SQLite this waits for the
    /// batch it joined to be committed.
    pub async fn commit(mut self) -> Result<()> {
        match &mut self.inner {
            TxInner::Sqlite { writer, flush } => {
                let mut w = writer.take().expect("a transaction commits once");
                if let Err(e) = exec_cached(&w.conn, "RELEASE op") {
                    w.rollback_savepoint();
                    flush.notify_one();
                    return Err(e.into());
                }
                let (done, committed) = oneshot::channel();
                w.pending.push(done);
                drop(w);
                flush.notify_one();
                match committed.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(MarketError::Commit(e)),
                    Err(_) => Err(MarketError::Commit("the database closed".into())),
                }
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

    /// On PostgreSQL, queue behind every other transaction that decides,
    /// pays or settles (in any market process), until this one ends. Taken
    /// first, before any row lock, it rules out deadlocks between payments
    /// that touch the same balances and workers in different orders; claims
    /// and bids still run concurrently. A no-op on SQLite, whose one writer
    /// already excludes everyone.
    pub async fn serialize_decisions(&mut self) -> Result<()> {
        if self.is_postgres() {
            query("SELECT pg_advisory_xact_lock(7461)")
                .fetch_one(&mut *self)
                .await?;
        }
        Ok(())
    }

    /// Undo everything this transaction did (dropping it does the same).
    pub async fn rollback(mut self) -> Result<()> {
        match &mut self.inner {
            TxInner::Sqlite { writer, flush } => {
                if let Some(mut w) = writer.take() {
                    w.rollback_savepoint();
                    flush.notify_one();
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
            if let Some(mut w) = writer.take() {
                w.rollback_savepoint();
                flush.notify_one();
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
            TxInner::Postgres(tx) => {
                Target::Postgres(&mut **tx.as_mut().expect("an open transaction"))
            }
        }
    }
}

impl<'c> Executor<'c> for &'c Db {
    fn target(self) -> Target<'c> {
        match &self.backend {
            Backend::Sqlite(l) => Target::SqliteRead(&**l),
            Backend::Postgres(p) => Target::PostgresPool(p),
        }
    }
}

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

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Int(Some(x)) => ToSqlOutput::Borrowed(ValueRef::Integer(*x)),
            Value::Real(Some(x)) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Value::Text(Some(x)) => ToSqlOutput::Borrowed(ValueRef::Text(x.as_bytes())),
            Value::Blob(Some(x)) => ToSqlOutput::Borrowed(ValueRef::Blob(x)),
            _ => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// A statement and its parameters; see [`query`].
pub struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Value>,
}

/// A statement with `$1, $2, ...` parameters.
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
        match ex.target() {
            Target::Sqlite(conn) => lite_run(conn, &self.sql, &self.args, rows),
            Target::SqliteRead(lite) => {
                lite.read(|conn| lite_run(conn, &self.sql, &self.args, rows))
            }
            Target::Postgres(conn) => pg_run(conn, &self.sql, self.args, rows).await,
            Target::PostgresPool(pool) => {
                let mut conn = pool.acquire().await?;
                pg_run(&mut conn, &self.sql, self.args, rows).await
            }
        }
    }
}

/// Run a statement without parameters or rows (transaction control), prepared once.
fn exec_cached(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

fn lite_run(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Value],
    want_rows: bool,
) -> Result<(Vec<Row>, u64)> {
    let mut stmt = conn.prepare_cached(sql)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| MarketError::Corrupt(format!("parameter {i} of {sql:?} is not $n")))?;
        let v = args
            .get(n - 1)
            .ok_or_else(|| MarketError::Corrupt(format!("no value bound for ${n} of {sql:?}")))?;
        stmt.raw_bind_parameter(i, v)?;
    }
    let cols: Arc<[String]> = if want_rows {
        stmt.column_names().iter().map(|c| c.to_string()).collect()
    } else {
        Arc::from(Vec::new())
    };
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        if want_rows {
            let vals = (0..cols.len())
                .map(|i| r.get::<_, LiteValue>(i))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(Row::Sqlite {
                cols: Arc::clone(&cols),
                vals,
            });
        }
    }
    drop(rows);
    Ok((out, conn.changes()))
}

async fn pg_run(
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
            let path = PathBuf::from(path);
            let writer = Lite::open(&path)?;
            // Checkpoints run in the background (see `checkpoint`), not in
            // the commit that happens to cross the threshold.
            writer.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
            migrate_sqlite(&writer)?;
            let lite = Arc::new(Lite {
                path,
                writer: Mutex::new(Writer {
                    conn: writer,
                    pending: Vec::new(),
                }),
                readers: std::sync::Mutex::new(Vec::new()),
                checkpointer: std::sync::Mutex::new(None),
                flush: Arc::new(Notify::new()),
            });
            Lite::spawn_flusher(&lite);
            Backend::Sqlite(lite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
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
            Backend::Postgres(pool)
        } else {
            return Err(MarketError::bad(
                "bad_database_url",
                format!("database URL must start with sqlite:// or postgres://, got {url:?}"),
            ));
        };
        Ok(Db {
            backend,
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
            Backend::Sqlite(l) => {
                let w = l.writer.lock().await;
                if w.conn.is_autocommit() {
                    exec_cached(&w.conn, "BEGIN IMMEDIATE")?;
                }
                exec_cached(&w.conn, "SAVEPOINT op")?;
                TxInner::Sqlite {
                    writer: Some(w),
                    flush: &l.flush,
                }
            }
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

fn migrate_sqlite(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tally_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )?;
    for (version, name, sql) in SQLITE_MIGRATIONS {
        let done: i64 = conn.query_row(
            "SELECT COUNT(*) FROM tally_migrations WHERE version = ?1",
            [version],
            |r| r.get(0),
        )?;
        if done == 1 {
            continue;
        }
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO tally_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, crate::now_ms()],
        )?;
        tx.commit()?;
    }
    Ok(())
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
