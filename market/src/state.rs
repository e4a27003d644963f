//! The shared state handle every layer is given: the database, the
//! configuration, wake-ups, listeners and counters ([`Market`]), and the
//! market's clock. Built at start-up (`server.rs`).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::db::query;
use crate::db::Db;
use crate::wake::{Waiters, Work};

/// Unix time in milliseconds, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch to an RFC 3339 UTC time.
pub fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub bids: AtomicU64,
    pub claims: AtomicU64,
    /// Claims' looks for work, a look that found nothing included.
    pub claim_looks: AtomicU64,
    pub results: AtomicU64,
    pub failures: AtomicU64,
    pub verified: AtomicU64,
    pub failed: AtomicU64,
    pub expired: AtomicU64,
    pub paid_results: AtomicU64,
    pub settlements: AtomicU64,
    pub replays: AtomicU64,
    /// Spot checks handed out.
    pub checks: AtomicU64,
    /// Verdicts undone by backtracking (the task re-opened).
    pub revised: AtomicU64,
    /// Tasks sent to human review, and tasks reviews verified.
    pub to_review: AtomicU64,
    pub reviewed: AtomicU64,
    /// Reviews answered.
    pub reviews: AtomicU64,
}

/// The running market: database, configuration, wake-ups and counters.
pub struct Market {
    pub db: Db,
    pub config: Config,
    /// The network and operator every signature must name.
    pub domain: tally_protocol::Domain,
    /// The upload budget large request bodies share (see `auth.rs`).
    pub uploads: Arc<tokio::sync::Semaphore>,
    pub metrics: Metrics,
    /// Claims waiting for work.
    pub waiters: Waiters,
    /// What changed, for listeners.
    pub events: crate::events::Events,
    /// The last report of the market's own periodic audit (`tally serve`
    /// runs `tally audit` against itself), shown at `GET /v1/audit`.
    pub audit: std::sync::Mutex<Option<tally_protocol::wire::SelfAudit>>,
    /// Spot checks made ahead of time.
    pub check_pool: crate::checks::Pool,
    /// The market page's worker list as of the last publication (where
    /// decisions are published in batches).
    pub(crate) online_workers:
        std::sync::Mutex<Option<(i64, Vec<tally_protocol::wire::WorkerSummary>)>>,
    /// Payees the network has shown able to take a plain payment.
    pub payable: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tells this process's own `NOTIFY`s from other processes'.
    pub(crate) instance: String,
    /// Set once this process listens to the others' notifications.
    pub(crate) relaying: watch::Sender<bool>,
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Market {
    /// Work arrived: wake as many waiting claims as it has slots, and tell
    /// the other market processes on the same database.
    pub async fn work_arrived(&self, work: Work) {
        self.waiters.arrived(&work);
        self.notify_others(&format!(
            "{} {} {} {}",
            self.instance, work.model, work.price, work.slots
        ))
        .await;
    }

    /// Anything may have changed (slots returned by expiry): wake every
    /// waiting claim, here and in the other market processes.
    pub async fn wake_all(&self) {
        self.waiters.wake_all();
        self.notify_others(&self.instance).await;
    }

    /// `NOTIFY tally_work`: `<instance>` (anything may have changed) or
    /// `<instance> <model> <price> <slots>` (work arrived: the other
    /// processes wake only as many of their claims as it has slots).
    async fn notify_others(&self, payload: &str) {
        if self.db.is_postgres() {
            let sent = query("SELECT pg_notify('tally_work', $1)")
                .bind(payload)
                .execute(&self.db)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not notify other market processes");
            }
        }
    }

    /// Wait until this process hears the other processes on its database
    /// (PostgreSQL; at once on SQLite, where there are none).
    pub async fn relaying(&self) {
        if !self.db.is_postgres() {
            return;
        }
        let mut rx = self.relaying.subscribe();
        let _ = rx.wait_for(|on| *on).await;
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stop long polls and background jobs.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.waiters.wake_all();
    }
}

/// A random id for this process's notifications.
pub(crate) fn instance_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b = (std::process::id() as u64 ^ crate::now_ms() as u64).to_le_bytes();
    }
    hex::encode(b)
}
