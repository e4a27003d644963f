//! When what the market decided becomes public.
//!
//! Where spot checks run, a decided task's evidence (its signed results,
//! verdict and payments) is published in batches: a task decided in one
//! period of `--publish-every` is public from the end of the next one, so
//! between one and two periods after its decision, and every task alike,
//! checks and client work. Until then nothing public tells a worker how its
//! result was judged or whether the task was a check: not the answer to
//! its result, not its account or worker record, not the event stream, not
//! the settlement records (earnings settle only once their task is public).
//! A task once public stays public, re-opened or not. Without spot checks
//! there is nothing to hide: a task is public once decided.

use std::sync::Arc;

use tally_protocol::wire::MarketEvent;
use tally_protocol::{BidId, TaskId};

use crate::db::{int, query, text};
use crate::lifecycle::parse_task_state;
use crate::Market;

/// The period in milliseconds, or `None` when tasks are public once decided.
fn period_ms(m: &Market) -> Option<i64> {
    let p = m.config.publish_every.as_millis().min(i64::MAX as u128) as i64;
    (!m.config.golden.items.is_empty() && p > 0).then_some(p)
}

/// Whether decisions are published in batches (and the event stream holds
/// back task events until then).
pub fn batched(m: &Market) -> bool {
    period_ms(m).is_some()
}

/// Tasks first decided before this time are public at `now`.
pub fn cutoff(m: &Market, now: i64) -> i64 {
    period_ms(m).map_or(i64::MAX, |p| cutoff_in(p, now))
}

/// [`cutoff`] with periods of `p` ms: the start of the period before `now`'s.
fn cutoff_in(p: i64, now: i64) -> i64 {
    (now.div_euclid(p) - 1).saturating_mul(p)
}

/// [`public_at`] with periods of `p` ms: the end of the period after the decision's.
fn public_at_in(p: i64, decided_at: i64) -> i64 {
    (decided_at.div_euclid(p) + 2).saturating_mul(p)
}

/// Whether a task first decided at `decided_at` is public at `now`.
pub fn is_public(m: &Market, decided_at: Option<i64>, now: i64) -> bool {
    decided_at.is_some_and(|d| d < cutoff(m, now))
}

/// When a task first decided at `decided_at` becomes public.
pub fn public_at(m: &Market, decided_at: i64) -> i64 {
    period_ms(m).map_or(decided_at, |p| public_at_in(p, decided_at))
}

/// At each period's end, tell listeners which tasks just became public.
pub fn spawn(m: &Arc<Market>) {
    let Some(p) = period_ms(m) else { return };
    let m = Arc::clone(m);
    tokio::spawn(async move {
        let mut shutdown = m.shutdown_signal();
        let mut from = cutoff(&m, crate::now_ms());
        loop {
            let now = crate::now_ms();
            let next = (now.div_euclid(p) + 1) * p;
            let wait = std::time::Duration::from_millis((next - now).max(1) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let to = cutoff(&m, crate::now_ms());
            if to <= from {
                continue;
            }
            match newly_public(&m, from, to).await {
                Ok(events) => {
                    for e in events {
                        m.events.publish(e);
                    }
                    from = to;
                }
                Err(e) => tracing::warn!(error = %e, "could not list the tasks just published"),
            }
        }
    });
}

async fn newly_public(m: &Market, from: i64, to: i64) -> crate::Result<Vec<MarketEvent>> {
    let rows = query(
        "SELECT id, bid_id, status FROM tasks WHERE decided_at >= $1 AND decided_at < $2 ORDER BY id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&m.db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MarketEvent::TaskPublished {
                bid: BidId(int(r, "bid_id")?),
                task: TaskId(int(r, "id")?),
                status: parse_task_state(&text(r, "status")?)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_public_between_one_and_two_periods_after_its_decision() {
        let p = 1_000i64;
        for decided in [0, 1, 999, 1_000, 1_500, 123_456] {
            let at = public_at_in(p, decided);
            assert!(
                at - decided > p && at - decided <= 2 * p,
                "{decided} -> {at}"
            );
            assert!(decided >= cutoff_in(p, at - 1), "not public just before");
            assert!(decided < cutoff_in(p, at), "public from then on");
            assert!(decided < cutoff_in(p, at + 5 * p), "and stays public");
        }
    }
}
