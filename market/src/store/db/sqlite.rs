//! The embedded engine: one writer connection with group commit, a pool of
//! WAL readers, background checkpoints, and the SQLite migrations (each
//! written once where both engines accept its SQL: the file in
//! `migrations/postgres`; in `migrations/sqlite` only where SQLite's differs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::Value as LiteValue;
use tokio::sync::{oneshot, Mutex, MutexGuard, Notify};

use super::{Row, Value};
use crate::error::{MarketError, Result};

/// The embedded SQLite migrations, applied in order, each once.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "market",
        include_str!("../../../../migrations/sqlite/0001_market.sql"),
    ),
    (
        2,
        "settlement",
        include_str!("../../../../migrations/postgres/0002_settlement.sql"),
    ),
    (
        3,
        "bid_tasks",
        include_str!("../../../../migrations/postgres/0003_bid_tasks.sql"),
    ),
    (
        4,
        "lean_indexes",
        include_str!("../../../../migrations/postgres/0004_lean_indexes.sql"),
    ),
    (
        5,
        "spot_checks",
        include_str!("../../../../migrations/postgres/0005_spot_checks.sql"),
    ),
    (
        6,
        "backtracking",
        include_str!("../../../../migrations/postgres/0006_backtracking.sql"),
    ),
    (
        7,
        "deposits",
        include_str!("../../../../migrations/sqlite/0007_deposits.sql"),
    ),
    (
        8,
        "claimable_index",
        include_str!("../../../../migrations/postgres/0008_claimable_index.sql"),
    ),
    (
        9,
        "reviews",
        include_str!("../../../../migrations/sqlite/0009_reviews.sql"),
    ),
    (
        10,
        "trust",
        include_str!("../../../../migrations/postgres/0010_trust.sql"),
    ),
    (
        11,
        "vote_checks",
        include_str!("../../../../migrations/postgres/0011_vote_checks.sql"),
    ),
];

/// Pragmas of every SQLite connection.
const SETUP: &str = "PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 10000;
    PRAGMA foreign_keys = ON;
    PRAGMA temp_store = MEMORY;
    PRAGMA cache_size = -65536;";

/// The embedded database: its file, the writer, the readers.
pub struct Lite {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: std::sync::Mutex<Vec<rusqlite::Connection>>,
    checkpointer: std::sync::Mutex<Option<rusqlite::Connection>>,
    /// Wakes the flusher: a batch is waiting to be committed.
    pub(super) flush: Arc<Notify>,
}

/// The writer connection and the batch it has open.
pub(super) struct Writer {
    pub(super) conn: rusqlite::Connection,
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
    /// Open (or create) the database at `path`, migrate it, and start its
    /// flusher.
    pub(super) fn connect(path: PathBuf) -> Result<Arc<Lite>> {
        let writer = Lite::open(&path)?;
        // Checkpoints run in the background (see `checkpoint`), not in the
        // commit that happens to cross the threshold.
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        migrate(&writer)?;
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
        Ok(lite)
    }

    /// Take the writer and open this writer's savepoint in the current
    /// batch (beginning one if none is open).
    pub(super) async fn begin(&self) -> Result<MutexGuard<'_, Writer>> {
        let w = self.writer.lock().await;
        if w.conn.is_autocommit() {
            exec_cached(&w.conn, "BEGIN IMMEDIATE")?;
        }
        exec_cached(&w.conn, "SAVEPOINT op")?;
        Ok(w)
    }

    fn open(path: &Path) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(SETUP)?;
        conn.set_prepared_statement_cache_capacity(256);
        Ok(conn)
    }

    /// Run `f` on a reader connection (opening one if all are busy).
    pub(super) fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
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

    pub(super) fn checkpoint(&self) -> Result<()> {
        let mut conn = self.checkpointer.lock().expect("checkpointer");
        if conn.is_none() {
            *conn = Some(Lite::open(&self.path)?);
        }
        let conn = conn.as_ref().expect("opened");
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Release the writer's savepoint into the batch and wait for the batch's
/// commit.
pub(super) async fn commit(mut w: MutexGuard<'_, Writer>, flush: &Notify) -> Result<()> {
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

/// Undo the writer's savepoint; the batch goes on without it.
pub(super) fn undo(mut w: MutexGuard<'_, Writer>, flush: &Notify) {
    w.rollback_savepoint();
    flush.notify_one();
}

impl Drop for Lite {
    fn drop(&mut self) {
        // Let the flusher see that the database is gone.
        self.flush.notify_one();
    }
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

/// Run a statement without parameters or rows (transaction control), prepared once.
fn exec_cached(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

pub(super) fn run(
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

fn migrate(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tally_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )?;
    for (version, name, sql) in MIGRATIONS {
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

#[cfg(test)]
mod tests {
    /// Every migration (one per file in `migrations/postgres`) is embedded,
    /// in order, under its own number and name, from `migrations/sqlite`
    /// where SQLite needs its own SQL and from the shared PostgreSQL file
    /// otherwise: a migration added to the directory but not to the list
    /// would silently never run.
    #[test]
    fn every_migration_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let names = |dir: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
                .expect("migrations")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            v.sort();
            v
        };
        let files = names("postgres");
        let own = names("sqlite");
        assert!(own.iter().all(|f| files.contains(f)), "{own:?}");
        let embedded: Vec<String> = super::MIGRATIONS
            .iter()
            .map(|(n, name, _)| format!("{n:04}_{name}.sql"))
            .collect();
        assert_eq!(embedded, files);
        for ((_, _, sql), file) in super::MIGRATIONS.iter().zip(&files) {
            let dir = if own.contains(file) {
                "sqlite"
            } else {
                "postgres"
            };
            let on_disk = std::fs::read_to_string(root.join(dir).join(file)).expect("read");
            assert_eq!(*sql, on_disk, "{file}");
        }
    }
}
