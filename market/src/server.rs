//! Start-up, background jobs and graceful shutdown.
//!
//! [`serve`] takes its listener and a shutdown future, so tests bind port 0
//! and stop the market cleanly.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::Db;
use crate::error::Result;
use crate::state::Market;
use crate::wake::{Waiters, Work};

impl Market {
    /// Connect to the database (running migrations) and build the market.
    pub async fn open(config: Config) -> Result<Arc<Market>> {
        if !config.golden.items.is_empty() && config.oracle.is_none() {
            return Err(crate::MarketError::Config(
                "spot checks (a golden set) need the market's own detector to answer them".into(),
            ));
        }
        let db = Db::connect(&config.db_url).await?;
        crate::checks::store_golden_models(&db, &config).await?;
        Ok(Arc::new(Market {
            db,
            domain: config.domain(),
            uploads: Arc::new(tokio::sync::Semaphore::new(crate::auth::budget_total(
                config.limits.upload_budget_bytes,
            ))),
            config,
            metrics: crate::state::Metrics::default(),
            waiters: Waiters::default(),
            payable: Default::default(),
            check_pool: Default::default(),
            online_workers: Default::default(),
            events: Default::default(),
            audit: Default::default(),
            instance: crate::state::instance_id(),
            relaying: watch::channel(false).0,
            shutdown: watch::channel(false).0,
        }))
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
                if let Err(e) = crate::nonces::prune_nonces(&m).await {
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
        crate::checks::spawn_pool(self);
        crate::publish::spawn(self);
        if self.db.is_postgres() {
            let m = Arc::clone(self);
            tokio::spawn(async move { relay_notifications(m).await });
        }
    }
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
