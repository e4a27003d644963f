//! Events pushed to whoever listens: `GET /v1/events` (server-sent events)
//! and bid long-polls (`GET /v1/bids/{id}?wait_ms=N&seen=K`). Published
//! after the transaction that made them commits, so a listener that reads
//! the state on an event sees it; a slow listener that falls behind loses
//! old events (it is told, and reads the state again), never blocks the
//! market.

use tally_protocol::wire::MarketEvent;
use tokio::sync::broadcast;

/// Events kept for listeners that fall behind.
const BACKLOG: usize = 4096;

/// The market's event bus.
pub struct Events {
    tx: broadcast::Sender<MarketEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Tell every listener (none listening is fine).
    pub fn publish(&self, event: MarketEvent) {
        let _ = self.tx.send(event);
    }

    /// Whether anyone listens (then publishing may cost a query).
    pub fn listening(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Listen from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MarketEvent> {
        self.tx.subscribe()
    }
}

/// Publish what a committed decision did; a decided task whose bid is now
/// closed also tells that the bid is done.
pub async fn published(m: &crate::Market, events: Vec<MarketEvent>) {
    // Nobody listens (the usual case under load): no bid lookup on the
    // result path.
    if !m.events.listening() {
        return;
    }
    for event in events {
        let bid = match &event {
            MarketEvent::TaskDecided { bid, .. } => Some(*bid),
            _ => None,
        };
        m.events.publish(event);
        if let Some(bid) = bid {
            let done = crate::db::query("SELECT status FROM bids WHERE id = $1")
                .bind(bid.0)
                .fetch_optional(&m.db)
                .await
                .ok()
                .flatten()
                .and_then(|r| crate::db::text(&r, "status").ok())
                .is_some_and(|s| s == "done");
            if done {
                m.events.publish(MarketEvent::BidDone { bid });
            }
        }
    }
}
