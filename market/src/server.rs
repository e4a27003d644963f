//! Start-up, background jobs and graceful shutdown.
//!
//! [`serve`] takes its listener and a shutdown future, so tests bind port 0
//! and stop the market cleanly.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::db::query;
use crate::config::Config;
use crate::db::Db;
use crate::error::Result;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub bids: AtomicU64,
    pub claims: AtomicU64,
    pub results: AtomicU64,
    pub failures: AtomicU64,
    pub verified: AtomicU64,
    pub failed: AtomicU64,
    pub expired: AtomicU64,
    pub paid_results: AtomicU64,
    pub settlements: AtomicU64,
    pub replays: AtomicU64,
    /// Claims waiting for work right now.
    pub waiting_claims: std::sync::atomic::AtomicI64,
}

/// The running market: database, configuration, wake-ups and counters.
pub struct Market {
    pub db: Db,
    pub config: Config,
    pub metrics: Metrics,
    wake: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
}

impl Market {
    /// Connect to the database (running migrations) and build the market.
    pub async fn open(config: Config) -> Result<Arc<Market>> {
        let db = Db::connect(&config.db_url).await?;
        Ok(Arc::new(Market {
            db,
            config,
            metrics: Metrics::default(),
            wake: watch::channel(0).0,
            shutdown: watch::channel(false).0,
        }))
    }

    /// Tell waiting claims that work may be available, here and in every
    /// other market process on the same database.
    pub async fn wake(&self) {
        self.wake_local();
        if self.db.is_postgres() {
            if let Err(e) = query("NOTIFY tally_work").execute(&self.db).await {
                tracing::warn!(error = %e, "could not notify other market processes");
            }
        }
    }

    fn wake_local(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stop long polls and background jobs.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
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
        if self.db.is_postgres() {
            let m = Arc::clone(self);
            tokio::spawn(async move { relay_notifications(m).await });
        }
    }
}

/// Relay `NOTIFY tally_work` from other processes to local waiting claims.
async fn relay_notifications(m: Arc<Market>) {
    let mut shutdown = m.shutdown_signal();
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect(m.db.url()).await?;
            l.listen("tally_work").await?;
            loop {
                l.recv().await?;
                m.wake_local();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            r = listener => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "notification listener lost; reconnecting");
                }
            }
            _ = shutdown.changed() => return,
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        // Anything may have arrived while we were deaf.
        m.wake_local();
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
