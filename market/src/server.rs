//! Start-up, background jobs and graceful shutdown.
//!
//! [`serve`] takes its listener and a shutdown future, so tests bind port 0
//! and stop the market cleanly.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::query;
use crate::db::Db;
use crate::error::Result;
use crate::wake::{Waiters, Work};

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
    pub metrics: Metrics,
    /// Claims waiting for work.
    pub waiters: Waiters,
    /// What changed, for listeners.
    pub events: crate::events::Events,
    /// The last report of the market's own periodic audit (`tally serve`
    /// runs `tally audit` against itself), shown at `GET /v1/audit`.
    pub audit: std::sync::Mutex<Option<tally_protocol::wire::SelfAudit>>,
    /// Payees the network has shown able to take a plain payment.
    pub payable: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tells this process's own `NOTIFY`s from other processes'.
    pub(crate) instance: String,
    /// Set once this process listens to the others' notifications.
    relaying: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
}

impl Market {
    /// Connect to the database (running migrations) and build the market.
    pub async fn open(config: Config) -> Result<Arc<Market>> {
        let db = Db::connect(&config.db_url).await?;
        crate::checks::store_golden_models(&db, &config).await?;
        Ok(Arc::new(Market {
            db,
            config,
            metrics: Metrics::default(),
            waiters: Waiters::default(),
            payable: Default::default(),
            events: Default::default(),
            audit: Default::default(),
            instance: instance_id(),
            relaying: watch::channel(false).0,
            shutdown: watch::channel(false).0,
        }))
    }

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

    /// Spawn the background jobs: lease and deadline sweeps, settlement, and
    /// on PostgreSQL the listener that relays other processes' wake-ups.
    pub fn spawn_jobs(self: &Arc<Self>) {
        let m = Arc::clone(self);
        tokio::spawn(async move {
            let mut shutdown = m.shutdown_signal();
            let mut tick = tokio::time::interval(m.config.sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                if let Err(e) = crate::sweep::expire_leases(&m).await {
                    tracing::error!(error = %e, "lease sweep failed");
                }
                if let Err(e) = crate::sweep::expire_deadlines(&m).await {
                    tracing::error!(error = %e, "deadline sweep failed");
                }
                if let Err(e) = crate::auth::prune_nonces(&m).await {
                    tracing::error!(error = %e, "nonce pruning failed");
                }
            }
        });
        let m = Arc::clone(self);
        tokio::spawn(async move {
            let mut shutdown = m.shutdown_signal();
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                if let Err(e) = m.db.checkpoint().await {
                    tracing::warn!(error = %e, "checkpoint failed");
                }
            }
        });
        crate::settle::spawn(self);
        crate::deposits::spawn(self);
        if self.db.is_postgres() {
            let m = Arc::clone(self);
            tokio::spawn(async move { relay_notifications(m).await });
        }
    }
}

/// A random id for this process's notifications.
fn instance_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b = (std::process::id() as u64 ^ crate::now_ms() as u64).to_le_bytes();
    }
    hex::encode(b)
}

/// Another process's `NOTIFY tally_work` (see [`Market::notify_others`]):
/// the work it names, or `None` for "anything may have changed"; nothing
/// for this process's own.
fn heard_work(m: &Market, payload: &str) -> Option<Option<Work>> {
    let mut parts = payload.split(' ');
    if parts.next() == Some(m.instance.as_str()) {
        return None;
    }
    let work = (|| {
        Some(Work {
            model: parts.next()?.parse().ok()?,
            price: parts.next()?.parse().ok()?,
            slots: parts.next()?.parse().ok()?,
        })
    })();
    Some(work)
}

/// Relay `NOTIFY tally_work` from other processes to local waiting claims,
/// and `NOTIFY tally_events` to local event listeners.
async fn relay_notifications(m: Arc<Market>) {
    let mut shutdown = m.shutdown_signal();
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(m.db.url()).await?;
            l.listen_all(["tally_work", crate::events::CHANNEL]).await?;
            m.relaying.send_replace(true);
            loop {
                let n = l.recv().await?;
                if n.channel() == crate::events::CHANNEL {
                    if let Some(events) = crate::events::heard(&m, n.payload()) {
                        crate::events::published(&m, events).await;
                    }
                } else if let Some(work) = heard_work(&m, n.payload()) {
                    match work {
                        Some(work) => m.waiters.arrived_elsewhere(&work),
                        None => m.waiters.wake_all(),
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            r = listener => {
                m.relaying.send_replace(false);
                if let Err(e) = r {
                    tracing::warn!(error = %e, "notification listener lost; reconnecting");
                }
            }
            _ = shutdown.changed() => return,
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // Anything may have arrived while we were deaf.
        m.waiters.wake_all();
    }
}

/// Serve the market on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    market: Arc<Market>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    market.spawn_jobs();
    let app = crate::api::router(Arc::clone(&market));
    let m = Arc::clone(&market);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            m.begin_shutdown();
        })
        .await;
    market.begin_shutdown();
    result?;
    Ok(())
}
