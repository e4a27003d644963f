//! Events pushed to whoever listens: `GET /v1/events` (server-sent events)
//! and bid long-polls (`GET /v1/bids/{id}?wait_ms=N&seen=K`). Published
//! after the transaction that made them commits, so a listener that reads
//! the state on an event sees it; a slow listener that falls behind loses
//! old events (it is told, and reads the state again), never blocks the
//! market. On PostgreSQL each event is also sent to the other market
//! processes on the database (`NOTIFY tally_events`), whose listeners get it
//! as if it had happened there.

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

/// What a long poll heard while it waited for a change.
pub enum Heard {
    Event(MarketEvent),
    /// It fell behind and lost events: look at the state again.
    Missed,
    /// The wait is over (its deadline passed, or the market is stopping).
    Over,
}

/// The next event on `rx`, or [`Heard::Over`] once `deadline` has passed:
/// the wait of every long poll that listens before it looks.
pub async fn next_until(
    rx: &mut broadcast::Receiver<MarketEvent>,
    deadline: tokio::time::Instant,
) -> Heard {
    tokio::select! {
        e = rx.recv() => match e {
            Ok(e) => Heard::Event(e),
            Err(broadcast::error::RecvError::Lagged(_)) => Heard::Missed,
            Err(broadcast::error::RecvError::Closed) => Heard::Over,
        },
        _ = tokio::time::sleep_until(deadline) => Heard::Over,
    }
}

/// The channel other market processes hear events on.
pub const CHANNEL: &str = "tally_events";

/// NOTIFY payloads must stay under 8,000 bytes.
const MAX_PAYLOAD: usize = 7_000;

/// Publish committed events here and, on PostgreSQL, in every other market
/// process on the database.
pub async fn announce(m: &crate::Market, events: Vec<MarketEvent>) {
    if events.is_empty() {
        return;
    }
    if m.db.is_postgres() {
        tell_others(m, &events).await;
    }
    published(m, events).await;
}

/// `NOTIFY tally_events, '<instance> <json array>'`, in as many
/// notifications as the size limit needs. A lost notification only delays
/// the other processes' listeners (their long polls still time out).
async fn tell_others(m: &crate::Market, events: &[MarketEvent]) {
    for events in payloads(events) {
        let sent = crate::db::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{} [{events}]", m.instance))
            .execute(&m.db)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not pass events to other market processes");
        }
    }
}

/// The events as comma-joined JSON, split so that no part passes
/// [`MAX_PAYLOAD`] (unless one event alone does).
fn payloads(events: &[MarketEvent]) -> Vec<String> {
    let mut out = vec![String::new()];
    for e in events {
        let j = serde_json::to_string(e).expect("events serialize");
        let last = out.last_mut().expect("a payload");
        if last.is_empty() {
            *last = j;
        } else if last.len() + 1 + j.len() > MAX_PAYLOAD {
            out.push(j);
        } else {
            last.push(',');
            last.push_str(&j);
        }
    }
    out
}

/// Events another process announced (`<instance> <json array>`), unless
/// they are this process's own.
pub fn heard(m: &crate::Market, payload: &str) -> Option<Vec<MarketEvent>> {
    let (from, json) = payload.split_once(' ')?;
    if from == m.instance {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// After a replica of the decided task `task` ended: when that closed its
/// bid, tell this process's listeners that the bid is done (no decision
/// announced it). Only here, like [`published`]'s own look at the bid: a
/// long poll in another process still answers by its deadline, and
/// `tally bid --wait` needs no such event (it stops once every task is
/// decided).
pub async fn bid_done_by_late_replica(m: &crate::Market, task: tally_protocol::TaskId) {
    // Nobody listens (the usual case under load): no lookup on the result path.
    if !m.events.listening() {
        return;
    }
    let row = crate::db::query(
        "SELECT b.id, b.status FROM bids b JOIN tasks t ON t.bid_id = b.id WHERE t.id = $1",
    )
    .bind(task.0)
    .fetch_optional(&m.db)
    .await
    .ok()
    .flatten();
    let Some(row) = row else { return };
    let done = crate::db::text(&row, "status").is_ok_and(|s| s == "done");
    if let (true, Ok(id)) = (done, crate::db::int(&row, "id")) {
        m.events.publish(MarketEvent::BidDone {
            bid: tally_protocol::BidId(id),
        });
    }
}

/// Publish what a committed decision did to this process's listeners; a
/// decided task whose bid is now closed also tells that the bid is done.
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

#[cfg(test)]
mod tests {
    use super::*;
    use tally_protocol::TaskId;

    #[test]
    fn many_events_split_into_notifications_that_fit() {
        let events: Vec<MarketEvent> = (0..1_000)
            .map(|i| MarketEvent::TaskRevised { task: TaskId(i) })
            .collect();
        let parts = payloads(&events);
        assert!(parts.len() > 1, "1,000 events do not fit one notification");
        let mut back = Vec::new();
        for p in &parts {
            assert!(p.len() <= MAX_PAYLOAD, "{} bytes", p.len());
            back.extend(serde_json::from_str::<Vec<MarketEvent>>(&format!("[{p}]")).unwrap());
        }
        assert_eq!(back, events, "every event once, in order");
        assert_eq!(payloads(&events[..1]).len(), 1);
    }
}
